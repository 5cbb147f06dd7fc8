/** Types for hera-sessions.js: a browser client for the hera-sessions HTTP API (v1). */

export declare const MAX_PATH_BYTES: 256;

/** The extensions the server accepts for each content type (the first is preferred). */
export declare const EXTENSIONS_BY_TYPE: Readonly<Record<string, readonly string[]>>;

/** Where the error came from: the JSON API, object storage, the network, or the client itself. */
export type ErrorSource = "api" | "storage" | "network" | "client";

export interface HeraSessionsErrorDetails {
  source?: ErrorSource;
  /** For storage errors: the storage's own code, e.g. "EntityTooLarge". */
  storage_code?: string;
  /** For storage XML errors: every simple element of `<Error>` (Code, Message, MaxSizeAllowed, ...). */
  fields?: Record<string, string>;
  [key: string]: unknown;
}

export declare class HeraSessionsError extends Error {
  constructor(
    message: string,
    init?: { code?: string; status?: number; details?: HeraSessionsErrorDetails; cause?: unknown },
  );
  name: "HeraSessionsError";
  /**
   * The API's snake_case code ("too_large", "content_type_not_allowed", "quota_exceeded", "invalid_path", ...),
   * or the client's: "network_error", "timeout", "aborted", "etag_missing", "location_missing",
   * "unsupported_protocol".
   */
  code: string;
  /** HTTP status; 0 when there was no answer. */
  status: number;
  details: HeraSessionsErrorDetails;
}

export interface Session {
  session_id: string;
  token: string;
  expires_at: string;
}

export interface FileRecord {
  path: string;
  size: number;
  content_type: string;
  etag: string | null;
  uploaded_at: string | null;
  /** The picked file's name as given (NFC); downloads save under it. null for files recorded without a ticket. */
  name: string | null;
  /** Base64 MD5 the upload declared (storage verified it where it can). */
  content_md5: string | null;
  /** From the image header, when it is an image. */
  width: number | null;
  height: number | null;
  /** What was done with location metadata (EXIF GPS). */
  location: "none" | "stripped" | "kept" | null;
}

/** The body of POST /v1/sessions/{session_id}/uploads. */
export interface UploadRequest {
  /** Where the file goes in the session: segments of [A-Za-z0-9._-], at most 256 bytes. */
  path: string;
  content_type: string;
  /** The exact size in bytes. */
  size: number;
  /** Default "PUT"; the server may answer with a large-file protocol for big files. */
  method?: "PUT" | "POST";
  /**
   * The file's name as the person gave it: any Unicode (stored NFC), at most 255 bytes of UTF-8, no control
   * characters; else 400 invalid_name. Default: the path's last segment.
   */
  name?: string;
  /** Base64 of the 16-byte MD5 (as the Content-MD5 header); else 400 invalid_content_md5. */
  content_md5?: string;
  /**
   * Default false: a path that holds a file (or another file's pending upload) is 409 file_exists, and the
   * ticket's headers make storage refuse to replace an object (send them all).
   */
  overwrite?: boolean;
}

export interface DownloadInfo extends FileRecord {
  /** A signed download URL. */
  url: string;
  expires_at: string;
}

/** What upload() did with location metadata: "unchecked" for types it cannot read (HEIC, AVIF, GIF, ...). */
export type LocationHandling = "none" | "stripped" | "unchecked";

/** What upload() sent: the bytes after location metadata was removed. */
export interface SentFile {
  size: number;
  /** base64 MD5 of exactly the bytes sent (also sent as the request's `content_md5`). */
  content_md5: string;
  location: LocationHandling;
  /** What was removed: "exif-gps" (the GPS IFD), "exif" (unreadable EXIF, dropped whole), "xmp", "iptc". */
  removed: string[];
}

export interface UploadResult extends FileRecord {
  /** false when the upload's bytes are stored but the service had not recorded the file yet. */
  recorded: boolean;
  url?: string;
  expires_at?: string;
  sent: SentFile;
}

export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploadOptions {
  /**
   * Where the file goes in the session, e.g. "photos/user.png". Default: a fresh path no file of the session has,
   * uniquePath(file, {prefix: folder}); with it, a 409 file_exists makes upload() pick another and retry once.
   */
  path?: string;
  /** The folder of the paths upload() picks (default "photos/"). */
  folder?: string;
  /** The name to record (default: displayName(file.name)). */
  name?: string;
  /** Replace a file already at `path` (default false: the server answers 409 file_exists). */
  overwrite?: boolean;
  /** Send the file as it is, location metadata included (default false). */
  keepLocation?: boolean;
  /** Default: the file's type, else the type its extension implies. */
  contentType?: string;
  /** Ask for a PUT (default) or an HTML-form POST upload; the server may pick multipart for big files. */
  method?: "PUT" | "POST";
  onProgress?: (progress: UploadProgress) => void;
  /** Cancels the upload: the promise rejects with a HeraSessionsError whose code is "aborted". */
  signal?: AbortSignal;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface HeraSessionsClientOptions {
  /** Where the API is: "" (default) for this origin. */
  baseUrl?: string;
  sessionId: string;
  token: string;
  fetch?: typeof fetch;
  XMLHttpRequest?: typeof XMLHttpRequest;
  /** Parts (or blocks) sent at once for multipart uploads (default 4). */
  partConcurrency?: number;
  /** Tries per request of an upload: a single PUT or POST, each part or block (default 3; transient failures only). */
  partTries?: number;
  /** First back-off between tries in ms (default 500), doubled each time. */
  retryDelay?: number;
  /** How long upload() waits for the file to be recorded, in ms (default 5000). */
  recordTimeout?: number;
}

export declare class HeraSessionsClient {
  constructor(options: HeraSessionsClientOptions);
  readonly baseUrl: string;
  readonly sessionId: string;

  /** POST /v1/sessions (a service key is needed unless the server runs the open local demo mode). */
  static createSession(options?: {
    baseUrl?: string;
    serviceKey?: string;
    fetch?: typeof fetch;
    signal?: AbortSignal;
  }): Promise<Session>;

  upload(file: Blob, options?: UploadOptions): Promise<UploadResult>;
  listFiles(options?: CallOptions): Promise<FileRecord[]>;
  getDownloadUrl(path: string, options?: CallOptions): Promise<DownloadInfo>;
  deleteFile(path: string, options?: CallOptions): Promise<void>;
  putMeta(name: string, doc: unknown, options?: CallOptions): Promise<unknown>;
  getMeta<T = unknown>(name: string, options?: CallOptions): Promise<T>;
  deleteMeta(name: string, options?: CallOptions): Promise<void>;
  /** Erase the session (files and documents); the client cannot be used afterwards. */
  erase(options?: CallOptions): Promise<void>;
}

/**
 * A valid session path for a picked file: prefix + a name of [A-Za-z0-9._-], at most 256 bytes, with a
 * lowercase extension that fits the content type. Pass the File itself to use its type.
 */
export declare function safePath(
  name: string | { name?: string; type?: string },
  prefix?: string,
  contentType?: string,
): string;

export declare const MAX_NAME_BYTES: 255;
export declare const MD5_CHUNK_BYTES: number;

/** An ASCII slug of a name's stem ("Crème brûlée (2)" → "creme-brulee-2", "祖母" → ""). */
export declare function asciiSlug(stem: string, max?: number): string;

/** The name to send: last path part, NFC, no control characters, ≤ 255 UTF-8 bytes; undefined if empty. */
export declare function displayName(name: string): string | undefined;

/**
 * A fresh ASCII path, `<prefix><slug or "photo">-<8 random [a-z0-9]>.<extension fitting the type>`, not in
 * `taken` (and added to it).
 */
export declare function uniquePath(
  file: string | { name?: string; type?: string },
  options?: { prefix?: string; contentType?: string; taken?: Set<string> },
): string;

/** base64 MD5 of a Blob, read `chunkSize` (4 MiB) bytes at a time. */
export declare function md5Base64(blob: Blob, options?: { chunkSize?: number; signal?: AbortSignal }): Promise<string>;

export interface StripResult {
  /** The cleaned bytes: the input itself when nothing was removed. */
  bytes: Uint8Array;
  location: LocationHandling;
  format: "jpeg" | "png" | "webp" | "other";
  removed: string[];
}

/** Remove location metadata from JPEG / PNG / WebP bytes without re-encoding (GPS IFD, XMP/IPTC places). */
export declare function stripLocation(input: ArrayBuffer | Uint8Array): StripResult;

/** Zero the GPS IFD of TIFF (EXIF) bytes in place and take its pointer out of IFD0/IFD1. */
export declare function stripTiffGps(tiff: Uint8Array): "none" | "stripped" | "unreadable";

/** The image format of some bytes, from their first bytes. */
export declare function sniffFormat(bytes: ArrayBuffer | Uint8Array): "jpeg" | "png" | "webp" | "other";

/** The Blob to send for a file: the same Blob when there was nothing to remove. */
export declare function withoutLocation(
  file: Blob,
): Promise<{ blob: Blob; location: LocationHandling; removed: string[] }>;

/** The content type an extension implies ("a.JPG" → "image/jpeg"), or "". */
export declare function contentTypeFor(path: string): string;

/** "512 B", "12.1 KB", "10 MB" (1 KB = 1024 bytes). */
export declare function formatBytes(bytes: number): string;

/** Parse a storage error answer (S3/GCS/Azure XML error document, or JSON) into a code and a message. */
export declare function parseStorageError(
  status: number,
  body?: string,
): { code: string; message: string; details: HeraSessionsErrorDetails };

/** Byte range [start, end) of part `partNumber` (1-based). */
export declare function partRange(partNumber: number, partSize: number, size: number): { start: number; end: number };

/** Every part of a file: at least one. */
export declare function planParts(
  size: number,
  partSize: number,
): { part_number: number; start: number; end: number }[];

/** Retry transient failures (network, timeout, 5xx) with exponential back-off. */
export declare function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options?: { tries?: number; delay?: number; signal?: AbortSignal },
): Promise<T>;

/** Run `worker` over `items`, at most `limit` at a time; the first failure aborts the rest. */
export declare function runPool<T, R>(
  items: T[],
  limit: number,
  worker: (item: T, signal: AbortSignal, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]>;

export interface StorageResponse {
  status: number;
  etag: string | null;
  text: string;
  header(name: string): string | null;
}

export interface UploadContext {
  file: Blob;
  path: string;
  contentType: string;
  ticket: Record<string, any>;
  signal: AbortSignal | undefined;
  progress: ((loaded: number) => void) | undefined;
  send(request: {
    method: string;
    url: string;
    headers?: Record<string, string>;
    body?: XMLHttpRequestBodyInit | null;
    signal?: AbortSignal;
    onProgress?: (loaded: number) => void;
  }): Promise<StorageResponse>;
  api(method: string, subpath: string, body?: unknown): Promise<any>;
  resolve(url: string): string;
  parts: { concurrency: number; tries: number; delay: number };
}

/** The upload protocols, by the ticket's `protocol`: "put", "post", "s3-multipart", "azure-blocks",
 * "gcs-resumable". */
export declare const PROTOCOLS: Record<
  string,
  (ctx: UploadContext) => Promise<{ etag?: string | null; record?: Record<string, any> }>
>;
