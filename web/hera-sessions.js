/**
 * hera-sessions: a small browser client for the hera-sessions HTTP API (v1).
 *
 * The API hands out presigned upload tickets; the bytes go straight from the browser to object storage
 * with XMLHttpRequest (fetch cannot report upload progress). Each upload protocol is one function in
 * {@link PROTOCOLS}. No dependencies, no build step: `import { HeraSessionsClient } from "./hera-sessions.js"`.
 *
 * @module hera-sessions
 */

import { md5 } from "./vendor/noble-hashes/legacy.js";
import { sniffFormat, stripLocation } from "./hera-location.js";

export { sniffFormat, stripLocation, stripTiffGps } from "./hera-location.js";

const API = "/v1/sessions";

/** A file path may be at most this many bytes (UTF-8); {@link safePath} only makes ASCII paths. */
export const MAX_PATH_BYTES = 256;

/** The extensions the server accepts for each content type (first one is the preferred). */
export const EXTENSIONS_BY_TYPE = Object.freeze({
  "image/png": [".png"],
  "image/jpeg": [".jpg", ".jpeg"],
  "image/webp": [".webp"],
  "image/heic": [".heic"],
  "image/heif": [".heif"],
  "image/gif": [".gif"],
  "image/avif": [".avif"],
  "application/pdf": [".pdf"],
  "application/json": [".json"],
  "text/plain": [".txt"],
});

const TYPE_ALIASES = { "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png" };

const TYPE_BY_EXTENSION = Object.fromEntries(
  Object.entries(EXTENSIONS_BY_TYPE).flatMap(([type, exts]) => exts.map((ext) => [ext, type])),
);

/** Storage error codes (S3, GCS and Azure XML documents) that have an API code of their own. */
const STORAGE_CODES = {
  EntityTooLarge: "too_large",
  RequestBodyTooLarge: "too_large",
  MaxMessageLengthExceeded: "too_large",
  RequestTimeout: "timeout",
  SlowDown: "rate_limited",
  ServerBusy: "storage_unavailable",
  ServiceUnavailable: "storage_unavailable",
  InternalError: "storage_unavailable",
};

// ---------------------------------------------------------------------------------------------------------
// Errors

/** Every error the client throws: `code` is the API's snake_case code (or the client's own, see below). */
export class HeraSessionsError extends Error {
  /**
   * Client-side codes: `network_error` (no answer, or blocked by CORS), `timeout`, `aborted` (the AbortSignal
   * fired), `etag_missing`, `location_missing`, `unsupported_protocol`, `invalid_path`; storage errors get a snake_case code from
   * the storage's own (`EntityTooLarge` → `too_large`, `AccessDenied` → `access_denied`, ...).
   *
   * @param {string} message for a person
   * @param {{code?: string, status?: number, details?: Record<string, unknown>, cause?: unknown}} [init]
   */
  constructor(message, { code = "unknown_error", status = 0, details = {}, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "HeraSessionsError";
    /** @type {string} */
    this.code = code;
    /** HTTP status (0 when there was no answer). @type {number} */
    this.status = status;
    /** `source` ("api" | "storage" | "network" | "client") and anything else known. @type {Record<string, unknown>} */
    this.details = details;
  }
}

function abortError(signal) {
  return new HeraSessionsError("The upload was cancelled.", {
    code: "aborted",
    details: { source: "client" },
    cause: signal?.reason,
  });
}

function codeForStatus(status) {
  const codes = { 401: "unauthorized", 403: "forbidden", 404: "not_found", 408: "timeout", 410: "gone" };
  const more = { 413: "too_large", 415: "content_type_not_allowed", 429: "rate_limited" };
  return codes[status] ?? more[status] ?? (status >= 500 ? "server_error" : "http_error");
}

/** `SignatureDoesNotMatch` → `signature_does_not_match`. */
function snakeCase(name) {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_|_$/g, "");
}

function decodeXml(text) {
  const named = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, ent) => {
    if (ent[0] !== "#") return named[ent.toLowerCase()] ?? whole;
    const point = ent[1] === "x" || ent[1] === "X" ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
    return Number.isFinite(point) && point <= 0x10ffff ? String.fromCodePoint(point) : whole;
  });
}

/**
 * Read a storage error answer: S3/GCS/Azure's XML `<Error><Code>…</Code><Message>…</Message></Error>`, or a JSON
 * `{"error": {"code", "message"}}` (the local dev storage), or nothing useful.
 *
 * @param {number} status
 * @param {string} [body]
 * @returns {{code: string, message: string, details: Record<string, unknown>}}
 */
export function parseStorageError(status, body = "") {
  const text = typeof body === "string" ? body : "";
  const xml = /<Error\b[^>]*>([\s\S]*?)<\/Error>/i.exec(text);
  if (xml) {
    /** @type {Record<string, string>} */
    const fields = {};
    for (const [, name, value] of xml[1].matchAll(/<([A-Za-z][\w.-]*)\b[^>]*>([^<]*)<\/\1\s*>/g)) {
      fields[name] = decodeXml(value.trim());
    }
    const storageCode = fields.Code ?? "";
    let code = STORAGE_CODES[storageCode] ?? (storageCode ? snakeCase(storageCode) : codeForStatus(status));
    if (storageCode === "AccessDenied" && /expired/i.test(fields.Message ?? "")) code = "upload_url_expired";
    // Azure appends "RequestId:…\nTime:…" to its messages: keep the first line for a person.
    const message = (fields.Message ?? "").split("\n")[0].trim() || `Storage refused the upload (${status}).`;
    return { code, message, details: { source: "storage", storage_code: storageCode, fields } };
  }
  try {
    const error = JSON.parse(text)?.error;
    if (error && typeof error === "object") {
      const { code, message, ...rest } = error;
      return {
        code: String(code || codeForStatus(status)),
        message: String(message || `Storage refused the upload (${status}).`),
        details: { source: "storage", ...rest },
      };
    }
  } catch {
    // not JSON either
  }
  return {
    code: codeForStatus(status),
    message: `Storage refused the upload (${status}).`,
    details: { source: "storage" },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Paths and sizes

function cleanSegment(text) {
  const cleaned = text.replace(/[^A-Za-z0-9._-]/gu, "_");
  return /^\.*$/.test(cleaned) ? "_".repeat(Math.max(cleaned.length, 1)) : cleaned;
}

function normalizeType(contentType) {
  const type = String(contentType ?? "").split(";")[0].trim().toLowerCase();
  return TYPE_ALIASES[type] ?? type;
}

/**
 * The content type the server expects for a path's extension (`photos/a.JPG` → `image/jpeg`), or "".
 * @param {string} path
 */
export function contentTypeFor(path) {
  const name = String(path).split("/").pop() ?? "";
  const dot = name.lastIndexOf(".");
  return dot > 0 ? (TYPE_BY_EXTENSION[name.slice(dot).toLowerCase()] ?? "") : "";
}

/**
 * Turn a picked file's name into a valid session path: `prefix` + a name of `[A-Za-z0-9._-]` only (other
 * characters become `_`), at most {@link MAX_PATH_BYTES} bytes, with a lowercase extension that fits the
 * content type (`"My Photo.PNG"` → `"photos/My_Photo.png"`; a JPEG named `scan` → `"photos/scan.jpg"`).
 *
 * @param {string | {name?: string, type?: string}} name a file name, or the File itself (its type is used)
 * @param {string} [prefix] folder(s) to put the file in; "" for none
 * @param {string} [contentType] defaults to the File's type, else the one the extension implies
 * @returns {string}
 */
export function safePath(name, prefix = "photos/", contentType = "") {
  if (name && typeof name === "object") {
    contentType ||= name.type ?? "";
    name = name.name ?? "";
  }
  // A path-like name (old browsers' "C:\fakepath\x.png", webkitRelativePath): keep the last part.
  const base = String(name ?? "").split(/[\\/]/).pop() ?? "";
  const folder = String(prefix ?? "").split("/").filter(Boolean).map(cleanSegment).join("/");

  const dot = base.lastIndexOf(".");
  let stem = dot >= 0 ? base.slice(0, dot) : base;
  let ext = dot >= 0 ? base.slice(dot + 1).toLowerCase().replace(/[^a-z0-9_-]/gu, "_").slice(0, 16) : "";
  const wanted = EXTENSIONS_BY_TYPE[normalizeType(contentType)];
  if (wanted && !wanted.includes(`.${ext}`)) {
    // Replace an extension that names another type (or none); keep an unknown suffix as part of the name.
    if (ext && !TYPE_BY_EXTENSION[`.${ext}`]) stem = `${stem}.${ext}`;
    ext = wanted[0].slice(1);
  }
  stem = stem.replace(/[^A-Za-z0-9._-]/gu, "_");
  if (/^\.*$/.test(stem)) stem = "file";

  const suffix = ext ? `.${ext}` : "";
  const room = MAX_PATH_BYTES - (folder ? folder.length + 1 : 0) - suffix.length;
  if (room < 1) {
    throw new HeraSessionsError(`The folder "${prefix}" is too long for a file path.`, {
      code: "invalid_path",
      details: { source: "client" },
    });
  }
  let file = stem.slice(0, room) + suffix;
  if (/^\.+$/.test(file)) file = "file";
  return folder ? `${folder}/${file}` : file;
}

/** A picked name may be at most this many bytes (UTF-8). */
export const MAX_NAME_BYTES = 255;

const TRANSLITERATION = {
  ß: "ss", æ: "ae", Æ: "AE", œ: "oe", Œ: "OE", ø: "o", Ø: "O", ł: "l", Ł: "L", đ: "d", Đ: "D", ð: "d", Ð: "D",
  þ: "th", Þ: "Th", ı: "i", ħ: "h", Ħ: "H", ŋ: "ng", Ŋ: "NG",
};

/**
 * An ASCII slug of a name's stem: accents dropped (NFKD), a few letters spelt out (ß → ss, ø → o), every
 * other run of characters a `-`, lowercase, at most `max` characters; "" when nothing ASCII is left.
 * `"Crème brûlée (2).JPG"` → `"creme-brulee-2"`, `"祖母"` → `""`.
 * @param {string} stem
 * @param {number} [max]
 */
export function asciiSlug(stem, max = 48) {
  return String(stem ?? "")
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .replace(/[^\x00-\x7f]/gu, (c) => TRANSLITERATION[c] ?? " ")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, max)
    .replace(/^-+|-+$/g, "");
}

/**
 * The name to send for a picked file: its last path part, NFC, without control characters, cut to
 * {@link MAX_NAME_BYTES} UTF-8 bytes on a character boundary (the extension kept); undefined when empty.
 * @param {string} name
 * @returns {string | undefined}
 */
export function displayName(name) {
  const base = (String(name ?? "").split(/[\\/]/).pop() ?? "").normalize("NFC").replace(/\p{Cc}/gu, "").trim();
  if (!base) return undefined;
  const bytes = (text) => new TextEncoder().encode(text).length;
  if (bytes(base) <= MAX_NAME_BYTES) return base;
  const dot = base.lastIndexOf(".");
  const ext = dot > 0 && base.length - dot <= 17 ? base.slice(dot) : "";
  const chars = typeof Intl?.Segmenter === "function"
    ? [...new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(base.slice(0, base.length - ext.length))].map((s) => s.segment)
    : [...base.slice(0, base.length - ext.length)];
  let stem = "";
  for (const c of chars) {
    if (bytes(stem + c + ext) > MAX_NAME_BYTES) break;
    stem += c;
  }
  return stem + ext;
}

function randomSuffix(length = 8) {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const random = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(random, (n) => alphabet[n % alphabet.length]).join("");
}

/**
 * A fresh ASCII path for a picked file, unique among `taken` (which it is added to):
 * `<prefix><slug of the name, or "photo">-<8 random characters>.<extension that fits the type>`
 * (`"祖母.jpg"` → `"photos/photo-k3j9x2qa.jpg"`, `"Harbour Walk.JPG"` → `"photos/harbour-walk-0d8sm1zq.jpg"`).
 *
 * @param {string | {name?: string, type?: string}} file a name, or the File itself (its type is used)
 * @param {{prefix?: string, contentType?: string, taken?: Set<string>}} [options]
 * @returns {string}
 */
export function uniquePath(file, { prefix = "photos/", contentType = "", taken } = {}) {
  let name = file;
  if (file && typeof file === "object") {
    contentType ||= file.type ?? "";
    name = file.name ?? "";
  }
  const base = String(name ?? "").split(/[\\/]/).pop() ?? "";
  const dot = base.lastIndexOf(".");
  const given = dot > 0 ? base.slice(dot).toLowerCase() : "";
  const type = normalizeType(contentType) || TYPE_BY_EXTENSION[given] || "";
  const wanted = EXTENSIONS_BY_TYPE[type];
  const ext = wanted ? (wanted.includes(given) ? given : wanted[0]) : TYPE_BY_EXTENSION[given] ? given : "";
  const folder = String(prefix ?? "").split("/").filter(Boolean).map(cleanSegment).join("/");
  const head = folder ? `${folder}/` : "";
  const room = MAX_PATH_BYTES - head.length - ext.length - 9; // "-" + 8
  if (room < 1) {
    throw new HeraSessionsError(`The folder "${prefix}" is too long for a file path.`, {
      code: "invalid_path",
      details: { source: "client" },
    });
  }
  const stem = asciiSlug(dot > 0 ? base.slice(0, dot) : base, Math.min(48, room)) || "photo".slice(0, room);
  for (;;) {
    const path = `${head}${stem}-${randomSuffix()}${ext}`;
    if (!taken?.has(path)) {
      taken?.add(path);
      return path;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// What is sent: location metadata removed, MD5

/** Bytes read at a time for the MD5 of a file (the whole file is never held for it). */
export const MD5_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * The MD5 of a Blob's bytes, base64 (as `Content-MD5` wants it), read `chunkSize` bytes at a time.
 * @param {Blob} blob
 * @param {{chunkSize?: number, signal?: AbortSignal}} [options]
 * @returns {Promise<string>}
 */
export async function md5Base64(blob, { chunkSize = MD5_CHUNK_BYTES, signal } = {}) {
  const hash = md5.create();
  for (let at = 0; at < blob.size || at === 0; at += chunkSize) {
    if (signal?.aborted) throw abortError(signal);
    hash.update(new Uint8Array(await blob.slice(at, at + chunkSize).arrayBuffer()));
    if (blob.size === 0) break;
  }
  const digest = hash.digest();
  return btoa(String.fromCharCode(...digest));
}

/**
 * The Blob to send for a picked file: for a JPEG, PNG or WebP, the same bytes without location metadata
 * (see {@link stripLocation}); anything else as it is (`location: "unchecked"`).
 * @param {Blob} file
 * @returns {Promise<{blob: Blob, location: "none" | "stripped" | "unchecked", removed: string[]}>}
 */
export async function withoutLocation(file) {
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  if (sniffFormat(head) === "other") return { blob: file, location: "unchecked", removed: [] };
  const input = new Uint8Array(await file.arrayBuffer());
  const { bytes, location, removed } = stripLocation(input);
  const blob = bytes === input ? file : new Blob([bytes], { type: file.type });
  return { blob, location: /** @type {"none" | "stripped" | "unchecked"} */ (location), removed };
}

/**
 * A size for a person: `512 B`, `12.1 KB`, `10 MB` (1 KB = 1024 bytes).
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${value >= 100 ? Math.round(value) : Number(value.toFixed(1))} ${units[i]}`;
}

/**
 * Byte range of part `partNumber` (1-based): `[start, end)` with `end` exclusive.
 * @param {number} partNumber
 * @param {number} partSize
 * @param {number} size the whole file's size
 * @returns {{start: number, end: number}}
 */
export function partRange(partNumber, partSize, size) {
  if (!(partSize > 0) || !(partNumber >= 1)) throw new RangeError("part numbers start at 1 and part_size must be > 0");
  const start = Math.min((partNumber - 1) * partSize, size);
  return { start, end: Math.min(partNumber * partSize, size) };
}

/**
 * Every part of a file of `size` bytes cut in `partSize` slices (at least one part, even for an empty file).
 * @param {number} size
 * @param {number} partSize
 * @returns {{part_number: number, start: number, end: number}[]}
 */
export function planParts(size, partSize) {
  const count = Math.max(1, Math.ceil(size / partSize));
  return Array.from({ length: count }, (_, i) => ({ part_number: i + 1, ...partRange(i + 1, partSize, size) }));
}

// ---------------------------------------------------------------------------------------------------------
// Small async tools

/** Resolve after `ms`, or reject with an `aborted` error when `signal` fires. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function isRetryable(err) {
  if (!(err instanceof HeraSessionsError)) return false;
  return ["network_error", "timeout", "rate_limited", "storage_unavailable"].includes(err.code) || err.status >= 500;
}

/**
 * Call `fn` up to `tries` times, waiting `delay`, 2×`delay`, ... between tries (transient failures only).
 * @template T
 * @param {(attempt: number) => Promise<T>} fn
 * @param {{tries?: number, delay?: number, signal?: AbortSignal}} [options]
 * @returns {Promise<T>}
 */
export async function retry(fn, { tries = 3, delay = 500, signal } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= tries || signal?.aborted || !isRetryable(err)) throw err;
      await sleep(delay * 2 ** (attempt - 1), signal);
    }
  }
}

/**
 * Run `worker` over `items`, at most `limit` at a time; the first failure aborts the others and rejects.
 * @template T, R
 * @param {T[]} items
 * @param {number} limit
 * @param {(item: T, signal: AbortSignal, index: number) => Promise<R>} worker
 * @param {AbortSignal} [signal]
 * @returns {Promise<R[]>}
 */
export async function runPool(items, limit, worker, signal) {
  const inner = new AbortController();
  const relay = () => inner.abort(signal?.reason);
  if (signal?.aborted) relay();
  else signal?.addEventListener("abort", relay, { once: true });
  const results = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      if (inner.signal.aborted) throw abortError(signal);
      const index = next++;
      results[index] = await worker(items[index], inner.signal, index);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
    return results;
  } catch (err) {
    inner.abort(err);
    throw err;
  } finally {
    signal?.removeEventListener("abort", relay);
  }
}

function sameEtag(a, b) {
  const bare = (tag) => String(tag ?? "").replace(/^W\//, "").replace(/"/g, "");
  return bare(a) === bare(b);
}

function encodePath(path) {
  return String(path).split("/").map(encodeURIComponent).join("/");
}

function withQuery(url, query) {
  return url + (url.includes("?") ? "&" : "?") + query;
}

// ---------------------------------------------------------------------------------------------------------
// HTTP: JSON API calls with fetch, storage uploads with XMLHttpRequest

/**
 * One call to the JSON API. Resolves with the parsed body (null for 204), rejects with a HeraSessionsError.
 * @param {(input: string, init?: RequestInit) => Promise<Response>} fetchFn
 * @param {string} method
 * @param {string} url
 * @param {{body?: unknown, token?: string, signal?: AbortSignal}} [options]
 * @returns {Promise<any>}
 */
async function callApi(fetchFn, method, url, { body, token, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  let text;
  try {
    response = await fetchFn(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    text = await response.text();
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw new HeraSessionsError("Could not reach the server. Check the connection and try again.", {
      code: "network_error",
      details: { source: "network" },
      cause: err,
    });
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const { code, message, ...rest } = data?.error && typeof data.error === "object" ? data.error : {};
    const fallback = `The server answered ${response.status} ${response.statusText ?? ""}`.trim();
    throw new HeraSessionsError(String(message || `${fallback}.`), {
      code: String(code || codeForStatus(response.status)),
      status: response.status,
      details: { source: "api", ...rest },
    });
  }
  return data;
}

// Headers a browser sets itself (setting them only logs a warning).
const UNSETTABLE_HEADERS = new Set(["content-length", "host", "connection", "accept-encoding", "origin"]);

/**
 * @typedef {object} StorageResponse
 * @property {number} status
 * @property {string | null} etag the ETag response header (null when CORS does not expose it)
 * @property {string} text
 * @property {(name: string) => string | null} header
 */

/**
 * Send one request to storage with XMLHttpRequest.
 * @param {typeof XMLHttpRequest} XHR
 * @param {{method: string, url: string, headers?: Record<string, string>, body?: any, signal?: AbortSignal,
 *   onProgress?: (loaded: number) => void}} request
 * @returns {Promise<StorageResponse>}
 */
function sendXhr(XHR, { method, url, headers = {}, body = null, signal, onProgress }) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const xhr = new XHR();
    const onAbort = () => xhr.abort();
    const settle = (fn, value) => {
      signal?.removeEventListener("abort", onAbort);
      fn(value);
    };
    xhr.open(method, url, true);
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (!UNSETTABLE_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, String(value));
    }
    // Only listen when asked: an upload listener makes a cross-origin request need a CORS preflight.
    if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      const header = (name) => xhr.getResponseHeader(name);
      if (xhr.status >= 200 && xhr.status < 300) {
        settle(resolve, { status: xhr.status, etag: header("ETag"), text: xhr.responseText, header });
        return;
      }
      const { code, message, details } = parseStorageError(xhr.status, xhr.responseText);
      settle(reject, new HeraSessionsError(message, { code, status: xhr.status, details }));
    };
    xhr.onerror = () =>
      settle(
        reject,
        new HeraSessionsError("The upload could not reach storage (network error, or storage CORS refused it).", {
          code: "network_error",
          details: { source: "network" },
        }),
      );
    xhr.ontimeout = () =>
      settle(reject, new HeraSessionsError("Storage took too long to answer.", { code: "timeout", details: { source: "network" } }));
    xhr.onabort = () => settle(reject, abortError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    xhr.send(body);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Upload protocols: one function per `protocol` of the upload ticket.

/**
 * @typedef {object} UploadContext
 * @property {Blob} file
 * @property {string} path
 * @property {string} contentType
 * @property {Record<string, any>} ticket the answer to POST /uploads
 * @property {AbortSignal | undefined} signal
 * @property {((loaded: number) => void) | undefined} progress bytes sent so far (whole file); undefined if nobody listens
 * @property {(request: object) => Promise<StorageResponse>} send an XMLHttpRequest to storage
 * @property {(method: string, subpath: string, body?: unknown) => Promise<any>} api a call under /v1/sessions/{id}
 * @property {(url: string) => string} resolve makes a relative ticket URL absolute (against baseUrl)
 * @property {{concurrency: number, tries: number, delay: number}} parts how to send parts
 */

/**
 * @typedef {object} ProtocolResult
 * @property {string | null} [etag] the stored object's ETag, when storage told
 * @property {Record<string, any>} [record] a file record the API returned
 */

/**
 * Send many slices of the file (S3 parts, Azure blocks): `concurrency` at a time, retried, with summed progress.
 * @param {UploadContext} ctx
 * @param {{number: number, start: number, end: number, url: string}[]} slices
 * @param {Record<string, string> | ((slice: {number: number}) => Record<string, string>)} headers
 * @returns {Promise<StorageResponse[]>}
 */
function sendSlices(ctx, slices, headers) {
  const headersFor = typeof headers === "function" ? headers : () => headers;
  const loaded = new Map();
  const report = () => ctx.progress?.([...loaded.values()].reduce((a, b) => a + b, 0));
  const { concurrency, tries, delay } = ctx.parts;
  return runPool(
    slices,
    concurrency,
    (slice, signal) =>
      retry(
        () => {
          loaded.set(slice.number, 0);
          return ctx.send({
            method: "PUT",
            url: slice.url,
            headers: headersFor(slice),
            body: ctx.file.slice(slice.start, slice.end),
            signal,
            onProgress:
              ctx.progress &&
              ((bytes) => {
                loaded.set(slice.number, Math.min(bytes, slice.end - slice.start));
                report();
              }),
          });
        },
        { tries, delay, signal },
      ).then((response) => {
        loaded.set(slice.number, slice.end - slice.start);
        report();
        return response;
      }),
    ctx.signal,
  );
}

/** Headers that describe the whole object (its digest, "only if new"): not sent with one part or block. */
const WHOLE_OBJECT_HEADERS = /^(content-md5|if-none-match|if-match|x-goog-if-generation-match)$/i;

/**
 * One request of an upload under the upload's one retry policy (the same as a multipart part's): transient
 * failures only (network, timeout, 429, 5xx), with back-off; a refusal (403, 412, ...) is final at once.
 * @template T
 * @param {UploadContext} ctx
 * @param {() => Promise<T>} request
 * @returns {Promise<T>}
 */
function retryOf(ctx, request) {
  return retry(request, { tries: ctx.parts.tries, delay: ctx.parts.delay, signal: ctx.signal });
}

/** A body without a type, so that the browser adds no Content-Type of its own. */
function bare(blob) {
  return blob.slice(0, blob.size);
}

/** @type {Record<string, (ctx: UploadContext) => Promise<ProtocolResult>>} */
export const PROTOCOLS = {
  /** One request with the whole body, exactly the ticket's headers. */
  async put(ctx) {
    const { ticket } = ctx;
    const response = await retryOf(ctx, () =>
      ctx.send({
        method: ticket.method || "PUT",
        url: ctx.resolve(ticket.url),
        headers: ticket.headers ?? {},
        body: bare(ctx.file),
        signal: ctx.signal,
        onProgress: ctx.progress,
      }),
    );
    return { etag: response.etag };
  },

  /** An HTML-form style POST: every field first, in order, then the file as `file` (last). */
  async post(ctx) {
    const { ticket } = ctx;
    const form = new FormData();
    for (const [name, value] of Object.entries(ticket.fields ?? {})) form.append(name, String(value));
    form.append("file", ctx.file, ctx.path.split("/").pop());
    const response = await retryOf(ctx, () =>
      ctx.send({
        method: ticket.method || "POST",
        url: ctx.resolve(ticket.url),
        headers: ticket.headers ?? {},
        body: form,
        signal: ctx.signal,
        onProgress: ctx.progress && ((bytes) => ctx.progress(Math.min(bytes, ctx.file.size))),
      }),
    );
    return { etag: response.etag };
  },

  /** S3 multipart: PUT each part to its URL, collect the ETags, then ask the API to complete. */
  async "s3-multipart"(ctx) {
    const { ticket, file } = ctx;
    const slices = [...ticket.parts]
      .sort((a, b) => a.part_number - b.part_number)
      .map((part) => ({
        number: part.part_number,
        url: ctx.resolve(part.url),
        ...partRange(part.part_number, ticket.part_size, file.size),
      }));
    // The ticket's headers describe the whole object: a part gets its own `headers` when the ticket gives them,
    // else the ticket's without the whole-file digest and conditions (S3 checks those at complete).
    const partHeaders = Object.fromEntries(
      Object.entries(ticket.headers ?? {}).filter(([name]) => !WHOLE_OBJECT_HEADERS.test(name)),
    );
    const own = new Map(ticket.parts.map((part) => [part.part_number, part.headers]));
    const responses = await sendSlices(ctx, slices, (slice) => own.get(slice.number) ?? partHeaders);
    const parts = responses.map((response, i) => {
      if (!response.etag) {
        throw new HeraSessionsError(
          "Storage did not show the part's ETag: the bucket's CORS rules must expose the ETag header.",
          { code: "etag_missing", status: response.status, details: { source: "storage" } },
        );
      }
      return { part_number: slices[i].number, etag: response.etag };
    });
    const record = await ctx.api("POST", `/uploads/${encodeURIComponent(ticket.upload_id)}/complete`, { parts });
    return { record, etag: record?.etag ?? null };
  },

  /** Azure block blob: Put Block for each block, then Put Block List. */
  async "azure-blocks"(ctx) {
    const { ticket, file, contentType } = ctx;
    const url = ctx.resolve(ticket.url);
    // The ticket's headers describe the blob (x-ms-version, x-ms-blob-type, Content-Type, Content-MD5,
    // If-None-Match...): the block requests carry no body type and none of the whole-blob headers; the block
    // list (XML) carries the conditions, and the blob's MD5 as x-ms-blob-content-md5 (Content-MD5 there would
    // be the MD5 of the XML).
    const given = Object.entries(ticket.headers ?? {}).filter(([name]) => !/^content-(type|length)$/i.test(name));
    const headers = Object.fromEntries(given.filter(([name]) => !WHOLE_OBJECT_HEADERS.test(name)));
    const listHeaders = Object.fromEntries(given.filter(([name]) => !/^content-md5$/i.test(name)));
    const md5 = given.find(([name]) => /^content-md5$/i.test(name))?.[1];
    const named = (name) => Object.keys(listHeaders).some((key) => key.toLowerCase() === name);
    if (md5 && !named("x-ms-blob-content-md5")) listHeaders["x-ms-blob-content-md5"] = md5;
    const ids = [];
    const slices = planParts(file.size, ticket.block_size || 4 * 1024 * 1024).map(({ part_number, start, end }) => {
      const id = btoa(`block-${String(part_number).padStart(6, "0")}`); // same length for every block
      ids.push(id);
      return { number: part_number, start, end, url: withQuery(url, `comp=block&blockid=${encodeURIComponent(id)}`) };
    });
    await sendSlices(ctx, slices, headers);
    const xml =
      '<?xml version="1.0" encoding="utf-8"?><BlockList>' +
      ids.map((id) => `<Latest>${id}</Latest>`).join("") +
      "</BlockList>";
    const response = await retryOf(ctx, () =>
      ctx.send({
        method: "PUT",
        url: withQuery(url, "comp=blocklist"),
        headers: {
          ...listHeaders,
          ...(named("x-ms-blob-content-type") ? {} : { "x-ms-blob-content-type": contentType }),
          "Content-Type": "application/xml; charset=utf-8",
        },
        body: xml,
        signal: ctx.signal,
      }),
    );
    return { etag: response.etag };
  },

  /** GCS resumable upload: POST the signed URL (`x-goog-resumable: start`) to open an upload session, then PUT
   * the whole file to the session's address, which GCS answers in `Location` (the bucket's CORS must expose it:
   * `python -m hera_sessions.cors gcs`). Opening the session is retried; the bytes go in one request. */
  async "gcs-resumable"(ctx) {
    const { ticket } = ctx;
    const started = await retryOf(ctx, () =>
      ctx.send({
        method: ticket.method || "POST",
        url: ctx.resolve(ticket.url),
        headers: ticket.headers ?? {},
        body: null,
        signal: ctx.signal,
      }),
    );
    const session = started.header("Location");
    if (!session) {
      throw new HeraSessionsError(
        "Storage did not show the upload session's address: the bucket's CORS rules must expose the Location header.",
        { code: "location_missing", status: started.status, details: { source: "storage" } },
      );
    }
    const response = await ctx.send({
      method: "PUT",
      url: session,
      headers: {},
      body: bare(ctx.file),
      signal: ctx.signal,
      onProgress: ctx.progress,
    });
    return { etag: response.etag };
  },
};

/** Protocols that leave an upload open on the server until completed: abort them on failure. */
const OPEN_UPLOAD_PROTOCOLS = new Set(["s3-multipart", "azure-blocks"]);

// ---------------------------------------------------------------------------------------------------------
// The client

/**
 * @typedef {object} FileRecord
 * @property {string} path
 * @property {number} size
 * @property {string} content_type
 * @property {string | null} etag
 * @property {string | null} uploaded_at
 * @property {string | null} [name] the picked file's name (servers with issue 11)
 * @property {string | null} [content_md5]
 * @property {number | null} [width]
 * @property {number | null} [height]
 * @property {string | null} [location]
 */

/** @typedef {{signal?: AbortSignal}} CallOptions */

/**
 * What upload() sent: the size and MD5 of the bytes after location metadata was removed.
 * @typedef {object} SentFile
 * @property {number} size
 * @property {string} content_md5 base64
 * @property {"none" | "stripped" | "unchecked"} location "unchecked": not a JPEG, PNG or WebP (e.g. HEIC)
 * @property {string[]} removed what was removed: "exif-gps", "exif", "xmp", "iptc"
 */

/** A client for one session. */
export class HeraSessionsClient {
  #fetch;
  #XHR;
  #token;
  #options;
  /** Paths of the session's files and of this client's uploads (null until the files were listed). */
  #taken = /** @type {Set<string> | null} */ (null);
  /** @type {Promise<void> | null} */
  #listing = null;
  /** The server refused the upload fields of issue 11 (`unknown_field`): not sent again. */
  #oldServer = false;

  /**
   * @param {object} options
   * @param {string} [options.baseUrl] where the API is ("" = this origin)
   * @param {string} options.sessionId
   * @param {string} options.token the session token (sent as `Authorization: Bearer`)
   * @param {typeof fetch} [options.fetch] for tests or wrappers
   * @param {typeof XMLHttpRequest} [options.XMLHttpRequest] for tests
   * @param {number} [options.partConcurrency] parts sent at once (4)
   * @param {number} [options.partTries] tries per part (3)
   * @param {number} [options.retryDelay] first back-off in ms (500), doubled each try
   * @param {number} [options.recordTimeout] how long upload() waits for the file to be recorded, ms (5000)
   */
  constructor({
    baseUrl = "",
    sessionId,
    token,
    fetch: fetchFn,
    XMLHttpRequest: XHR,
    partConcurrency = 4,
    partTries = 3,
    retryDelay = 500,
    recordTimeout = 5000,
  } = /** @type {any} */ ({})) {
    if (!sessionId || !token) throw new TypeError("HeraSessionsClient needs a sessionId and a token");
    const f = fetchFn ?? globalThis.fetch;
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.sessionId = sessionId;
    this.#token = token;
    this.#fetch = (/** @type {string} */ input, /** @type {RequestInit} */ init) => f(input, init);
    this.#XHR = XHR ?? globalThis.XMLHttpRequest;
    this.#options = { partConcurrency, partTries, retryDelay, recordTimeout };
  }

  /**
   * Create a session. The app's backend does this with a service key; the local demo mode needs none.
   * @param {{baseUrl?: string, serviceKey?: string, fetch?: typeof fetch, signal?: AbortSignal}} [options]
   * @returns {Promise<{session_id: string, token: string, expires_at: string}>}
   */
  static async createSession({ baseUrl = "", serviceKey, fetch: fetchFn, signal } = {}) {
    const f = fetchFn ?? globalThis.fetch;
    const url = `${String(baseUrl).replace(/\/+$/, "")}${API}`;
    return callApi((input, init) => f(input, init), "POST", url, { body: {}, token: serviceKey, signal });
  }

  /**
   * A call under /v1/sessions/{id}.
   * @param {string} method
   * @param {string} [subpath]
   * @param {{body?: unknown, signal?: AbortSignal}} [options]
   */
  #api(method, subpath = "", { body, signal } = {}) {
    const url = `${this.baseUrl}${API}/${encodeURIComponent(this.sessionId)}${subpath}`;
    return callApi(this.#fetch, method, url, { body, token: this.#token, signal });
  }

  #resolve(url) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(url) || !this.baseUrl) return url;
    return new URL(url, `${this.baseUrl}/`).href;
  }

  /**
   * Upload a file straight to storage, then wait (up to `recordTimeout`) until the service has recorded it.
   *
   * Before asking for a ticket it removes location metadata from JPEG, PNG and WebP (see {@link stripLocation};
   * `keepLocation: true` sends the file as it is), computes the MD5 of the bytes it will send, and, without a
   * `path`, picks a fresh ASCII path no file of the session has ({@link uniquePath}); the picked name goes in
   * `name`. Without `overwrite`, a path that already holds a file (`409 file_exists`) makes it pick another path
   * and try once more (only for a path it picked itself).
   *
   * Resolves with the file record (with `url` and `expires_at` of a download URL when recorded) and
   * `recorded: true`, or with what is known and `recorded: false` if the record did not show up in time;
   * `sent` tells what was sent (size, MD5, what was done with location metadata).
   *
   * @param {Blob} file
   * @param {object} [options]
   * @param {string} [options.path] where to put it in the session (default: a fresh {@link uniquePath})
   * @param {string} [options.folder] where picked paths go (default "photos/")
   * @param {string} [options.name] the name to record (default: the file's name, NFC)
   * @param {boolean} [options.overwrite] replace a file already at `path` (default false)
   * @param {boolean} [options.keepLocation] send location metadata as it is (default false)
   * @param {string} [options.contentType] default: the file's type, else the one its extension implies
   * @param {"PUT" | "POST"} [options.method] ask for a PUT or an HTML-form POST upload
   * @param {(progress: {loaded: number, total: number}) => void} [options.onProgress]
   * @param {AbortSignal} [options.signal] cancels the upload (rejects with code "aborted")
   * @returns {Promise<FileRecord & {recorded: boolean, url?: string, expires_at?: string, sent: SentFile}>}
   */
  async upload(
    file,
    { path, folder = "photos/", name, overwrite = false, keepLocation = false, contentType, method, onProgress, signal } = {},
  ) {
    if (signal?.aborted) throw abortError(signal);
    const picked = /** @type {{name?: string}} */ (file).name;
    const type =
      normalizeType(contentType || file.type || contentTypeFor(path ?? picked ?? "")) || "application/octet-stream";
    const prepared = keepLocation
      ? { blob: file, location: /** @type {const} */ ("unchecked"), removed: [] }
      : await withoutLocation(file);
    const body = prepared.blob;
    const total = body.size;
    const contentMd5 = await md5Base64(body, { signal });
    const sent = { size: total, content_md5: contentMd5, location: prepared.location, removed: prepared.removed };
    const ownPath = path === undefined;
    const recordName = name ?? displayName(picked ?? "");
    const pick = async () => {
      await this.#knowPaths(signal);
      return uniquePath({ name: picked ?? "", type }, { prefix: folder, taken: /** @type {Set<string>} */ (this.#taken) });
    };
    path ??= await pick();

    let withNewFields = false;
    const ask = (at) => {
      const request = { path: at, content_type: type, size: total };
      if (method) request.method = method;
      withNewFields = !this.#oldServer;
      if (withNewFields) {
        if (recordName) request.name = recordName;
        request.content_md5 = contentMd5;
        if (overwrite) request.overwrite = true;
      }
      return this.#api("POST", "/uploads", { body: request, signal });
    };
    let ticket;
    try {
      ticket = await ask(path);
    } catch (err) {
      if (err?.code === "unknown_field" && withNewFields) {
        // A server without issue 11: send what it knows (the path is still fresh, the bytes still clean).
        this.#oldServer = true;
        ticket = await ask(path);
      } else if (err?.code === "file_exists" && ownPath && !overwrite) {
        this.#taken?.add(path);
        path = await pick();
        ticket = await ask(path);
      } else throw err;
    }
    this.#taken?.add(path);
    const send = Object.hasOwn(PROTOCOLS, ticket.protocol) ? PROTOCOLS[ticket.protocol] : null;
    if (!send) {
      await this.#abandon(ticket);
      throw new HeraSessionsError(`This client cannot upload with the "${ticket.protocol}" protocol.`, {
        code: "unsupported_protocol",
        details: { source: "client", protocol: ticket.protocol },
      });
    }

    /** @type {UploadContext} */
    const ctx = {
      file: body,
      path,
      contentType: type,
      ticket,
      signal,
      progress: onProgress && ((loaded) => onProgress({ loaded: Math.min(loaded, total), total })),
      send: (req) => sendXhr(this.#XHR, req),
      api: (verb, subpath, body) => this.#api(verb, subpath, { body, signal }),
      resolve: (url) => this.#resolve(url),
      parts: {
        concurrency: this.#options.partConcurrency,
        tries: this.#options.partTries,
        delay: this.#options.retryDelay,
      },
    };
    let result;
    try {
      result = await send(ctx);
    } catch (err) {
      if (OPEN_UPLOAD_PROTOCOLS.has(ticket.protocol)) await this.#abandon(ticket);
      throw err;
    }
    onProgress?.({ loaded: total, total });

    const expected = { size: total, etag: result.etag ?? null };
    const recorded = await this.#waitForRecord(path, expected, signal);
    if (recorded) return { ...recorded, sent };
    return {
      path,
      size: total,
      content_type: type,
      etag: result.record?.etag ?? expected.etag,
      uploaded_at: result.record?.uploaded_at ?? null,
      name: recordName ?? null,
      content_md5: contentMd5,
      ...(result.record ?? {}),
      recorded: false,
      sent,
    };
  }

  /** Learn the session's paths once (every upload that picks a path waits for the same listing). */
  async #knowPaths(signal) {
    if (this.#taken) return;
    this.#listing ??= this.listFiles({ signal }).then(
      () => undefined,
      (err) => {
        this.#listing = null;
        throw err;
      },
    );
    await this.#listing;
  }

  /** Tell the server an upload will not be completed (best effort: never throws). */
  async #abandon(ticket) {
    if (!ticket?.upload_id) return;
    try {
      await this.#api("DELETE", `/uploads/${encodeURIComponent(ticket.upload_id)}`);
    } catch {
      // the ticket expires on its own
    }
  }

  /** Poll GET /files/{path} until the new file is recorded (same size, same ETag when known), or time out. */
  async #waitForRecord(path, expected, signal) {
    const deadline = Date.now() + this.#options.recordTimeout;
    let delay = 150;
    for (;;) {
      try {
        const record = await this.getDownloadUrl(path, { signal });
        const fresh = record.size === expected.size && (!expected.etag || !record.etag || sameEtag(record.etag, expected.etag));
        if (fresh) return { ...record, recorded: true };
      } catch (err) {
        // Not recorded yet (404), or a passing hiccup: keep waiting. Anything else is real.
        const transient = err.status === 404 || err.status >= 500 || err.code === "network_error";
        if (!(err instanceof HeraSessionsError) || !transient) throw err;
      }
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await sleep(Math.min(delay, left), signal);
      delay = Math.min(delay * 2, 1000);
    }
  }

  /**
   * @param {CallOptions} [options]
   * @returns {Promise<FileRecord[]>} the session's files
   */
  async listFiles({ signal } = {}) {
    const data = await this.#api("GET", "/files", { signal });
    const files = data?.files ?? [];
    this.#taken ??= new Set();
    for (const record of files) this.#taken.add(record.path);
    return files;
  }

  /**
   * A signed download URL for a file, with its record.
   * @param {string} path
   * @param {CallOptions} [options]
   * @returns {Promise<FileRecord & {url: string, expires_at: string}>}
   */
  getDownloadUrl(path, { signal } = {}) {
    return this.#api("GET", `/files/${encodePath(path)}`, { signal });
  }

  /**
   * @param {string} path
   * @param {CallOptions} [options]
   */
  async deleteFile(path, { signal } = {}) {
    await this.#api("DELETE", `/files/${encodePath(path)}`, { signal });
    this.#taken?.delete(path);
  }

  /**
   * Store a JSON document under `name` (1-64 of `[A-Za-z0-9_-]`).
   * @param {string} name
   * @param {unknown} doc
   * @param {CallOptions} [options]
   */
  putMeta(name, doc, { signal } = {}) {
    return this.#api("PUT", `/meta/${encodeURIComponent(name)}`, { body: doc, signal });
  }

  /**
   * @param {string} name
   * @param {CallOptions} [options]
   */
  getMeta(name, { signal } = {}) {
    return this.#api("GET", `/meta/${encodeURIComponent(name)}`, { signal });
  }

  /**
   * @param {string} name
   * @param {CallOptions} [options]
   */
  async deleteMeta(name, { signal } = {}) {
    await this.#api("DELETE", `/meta/${encodeURIComponent(name)}`, { signal });
  }

  /**
   * Erase the session: every file and document. The client cannot be used afterwards.
   * @param {CallOptions} [options]
   */
  async erase({ signal } = {}) {
    await this.#api("DELETE", "", { signal });
    this.#taken = new Set();
  }
}
