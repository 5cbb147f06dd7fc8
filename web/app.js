/**
 * The demo page: one session kept in sessionStorage, uploads with progress, a gallery of signed URLs.
 *
 * Configuration (all optional): `window.HERA_CONFIG = {baseUrl, method, autoUpload, session}` set before this
 * module runs, overridden by the query string (`?method=POST`, `?baseUrl=http://localhost:3001`).
 * `session` is `{session_id, token, expires_at?}` made by the app's backend with its service key (where the
 * API takes no sessions from browsers); without it the page creates its own (local mode, no service keys).
 */
import { HeraSessionsClient, formatBytes } from "./hera-sessions.js";

const config = readConfig();
const STORAGE_KEY = `hera-sessions:session:${config.baseUrl}`;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const els = {
  input: /** @type {HTMLInputElement} */ ($("file-input")),
  dropzone: $("dropzone"),
  uploadButton: $("upload-button"),
  eraseButton: /** @type {HTMLButtonElement} */ ($("erase-button")),
  error: $("error"),
  status: $("status"),
  uploads: $("uploads"),
  gallery: $("gallery"),
  galleryHeading: $("gallery-heading"),
  empty: $("empty"),
  sessionId: $("session-id"),
};

/** @type {HeraSessionsClient | null} */
let client = null;
/** @type {Promise<void> | null} */
let renewal = null;
/** Controllers of the uploads in flight (aborted when the session is erased). */
const inFlight = new Set();
/** The session the app's backend handed over in HERA_CONFIG, until it is used. */
let handedSession = config.session;
/** path → the name it was picked under (for servers whose records carry no `name` yet). */
const pickedNames = new Map();

function readConfig() {
  const given = /** @type {any} */ (window).HERA_CONFIG ?? {};
  const query = new URLSearchParams(location.search);
  const method = query.get("method") ?? given.method;
  const session = given.session?.session_id && given.session?.token ? given.session : null;
  return {
    baseUrl: String(query.get("baseUrl") ?? given.baseUrl ?? "").replace(/\/+$/, ""),
    method: method ? String(method).toUpperCase() : undefined,
    autoUpload: given.autoUpload !== false && query.get("autoUpload") !== "false",
    session,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Session

function storedSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
    if (!session?.session_id || !session?.token) return null;
    if (session.expires_at && Date.parse(session.expires_at) <= Date.now()) return null;
    return session;
  } catch {
    return null;
  }
}

/** Use the handed-over or stored session, or create one (always a new one when `fresh`). */
async function openSession({ fresh = false } = {}) {
  let session = fresh ? null : (handedSession ?? storedSession());
  handedSession = null;
  session ??= await HeraSessionsClient.createSession({ baseUrl: config.baseUrl });
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  client = new HeraSessionsClient({ baseUrl: config.baseUrl, sessionId: session.session_id, token: session.token });
  els.sessionId.textContent = session.session_id;
}

/** Open a session if the page has none yet (the first try failed); false (and an error shown) if it cannot. */
async function ensureSession() {
  if (client) return true;
  try {
    await openSession();
    return true;
  } catch (err) {
    showError(`The photo service could not be reached. ${describe(err)}`);
    return false;
  }
}

/** The session itself is gone, expired or not ours: a new one is needed. */
function sessionGone(err) {
  return err?.details?.source === "api" && [401, 403, 404, 410].includes(err.status);
}

/** Replace the session `stale` once, however many calls found it gone at the same time. */
function renewSession(stale) {
  if (client !== stale) return Promise.resolve();
  renewal ??= openSession({ fresh: true })
    .then(() => {
      clearGallery();
      say("Your session had ended, so a new one was started.");
    })
    .finally(() => {
      renewal = null;
    });
  return renewal;
}

/** Run `fn(client)`; if the session turns out to be gone, start a new one and try once more. */
async function withSession(fn) {
  if (renewal) await renewal;
  const used = /** @type {HeraSessionsClient} */ (client);
  try {
    return await fn(used);
  } catch (err) {
    if (!sessionGone(err)) throw err;
    await renewSession(used);
    return fn(/** @type {HeraSessionsClient} */ (client));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Messages

function say(text) {
  els.status.textContent = text;
}

function showError(text) {
  const line = document.createElement("p");
  line.textContent = text;
  els.error.append(line);
}

function clearErrors() {
  els.error.replaceChildren();
}

/** The size limit in words, from the error's details or the server's message; null if unknown. */
function limitPhrase(err) {
  const details = err.details ?? {};
  const bytes = Number(details.max_bytes ?? details.limit ?? details.fields?.MaxSizeAllowed);
  if (Number.isFinite(bytes) && bytes > 0) return `the limit is ${formatBytes(bytes)}`;
  const found = /(?:limit|at most|maximum|max|up to)\D{0,24}?(\d[\d.,]*)\s*(bytes|[KMGT]i?B)\b/i.exec(err.message);
  if (!found) return null;
  const [, amount, unit] = found;
  const size = unit.toLowerCase() === "bytes" ? formatBytes(Number(amount.replace(/,/g, ""))) : `${amount} ${unit.replace("i", "")}`;
  return `the limit is ${size}`;
}

/**
 * An error in words a person understands.
 * @param {any} err
 * @param {string} [name] the file's name as the person knows it
 */
function describe(err, name) {
  const who = name ? `“${name}”` : "The file";
  const message = String(err?.message ?? err);
  switch (err?.code) {
    case "too_large":
    case "file_too_large": {
      const limit = limitPhrase(err);
      return limit ? `${who} is too large: ${limit}.` : `${who} is too large. ${message}`;
    }
    case "content_type_not_allowed":
      return `${who} is not a supported type: use PNG, JPEG, WebP or HEIC.`;
    case "extension_mismatch":
    case "invalid_path":
      return `${who} has a name that cannot be used. ${message}`;
    case "quota_exceeded":
      return `${who} was not uploaded: this session is full. ${message}`;
    case "network_error":
      return name
        ? `${who} could not be sent: the connection failed. Check your network and try again.`
        : "The connection failed. Check your network and try again.";
    case "timeout":
      return name ? `${who} could not be sent in time. Please try again.` : "The server took too long to answer. Please try again.";
    case "upload_url_expired":
      return `${who} took too long to start uploading. Please try again.`;
    case "unavailable":
    case "storage_unavailable":
    case "metadata_unavailable":
    case "server_error":
      return `The service is busy right now, so ${name ? who : "that"} did not go through. Please try again in a moment.`;
    case "aborted":
      return `${who} was cancelled.`;
    default:
      return name ? `${who}: ${message}` : message;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Gallery

function galleryItem(path) {
  return [...els.gallery.children].find((item) => /** @type {HTMLElement} */ (item).dataset.path === path);
}

function updateEmpty() {
  els.empty.hidden = els.gallery.childElementCount > 0;
}

function clearGallery() {
  for (const item of [...els.gallery.children]) removeItem(/** @type {HTMLElement} */ (item));
  updateEmpty();
}

/** Take a tile off the page and let go of its thumbnail's bytes. */
function removeItem(item) {
  if (item.dataset.thumbnail) URL.revokeObjectURL(item.dataset.thumbnail);
  item.remove();
}

// ---------------------------------------------------------------------------------------------------------
// Thumbnails: a tile shows a copy scaled down in the browser to the tile's size in device pixels, never the
// full photo (a phone's photo is 3–12 MB and 4000 pixels wide; a tile is ~160 CSS pixels). A photo just
// uploaded is scaled from the picked file (nothing downloaded); a listed one from its signed URL, fetched
// with CORS (the bucket's rules allow GET) so that the canvas may be read back.

/** The shorter side of a thumbnail, in device pixels, for a tile `width` CSS pixels wide. */
function thumbnailEdge(width) {
  return Math.min(1024, Math.ceil(Math.max(width, 160) * (window.devicePixelRatio || 1)));
}

/**
 * An object URL (`blob:`, the tile's to revoke) of `source` (a picked File or a signed URL) scaled down so its
 * shorter side is `edge`; `source` itself (an object URL for a file) when it is small already; null when the
 * browser cannot decode it here (HEIC outside Safari, a CDN without CORS): the tile then loads the URL as it is.
 * @param {Blob | string} source
 * @param {number} edge
 * @returns {Promise<string | null>}
 */
async function thumbnail(source, edge) {
  /** @type {ImageBitmap | HTMLImageElement} */
  let picture;
  try {
    if (typeof source === "string") {
      const image = new Image();
      image.crossOrigin = "anonymous";
      image.src = source;
      await image.decode();
      picture = image;
    } else {
      picture = await createImageBitmap(source, { imageOrientation: "from-image" });
    }
  } catch {
    return null;
  }
  const width = "naturalWidth" in picture ? picture.naturalWidth : picture.width;
  const height = "naturalHeight" in picture ? picture.naturalHeight : picture.height;
  const scale = edge / Math.min(width, height);
  try {
    if (scale >= 1) {
      return typeof source === "string" ? source : URL.createObjectURL(source);
    }
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    g.imageSmoothingQuality = "high";
    g.drawImage(picture, 0, 0, canvas.width, canvas.height);
    // WebP keeps a PNG's transparency; a browser that cannot write it gives PNG.
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/webp", 0.85));
    return blob ? URL.createObjectURL(blob) : null;
  } catch {
    return null; // a canvas the browser will not read back
  } finally {
    if ("close" in picture) picture.close();
  }
}

/** Run `show` once `element` comes near the screen (at once where the browser cannot tell). */
function whenVisible(element, show) {
  if (!("IntersectionObserver" in window)) {
    show();
    return;
  }
  const observer = new IntersectionObserver(
    (entries) => {
      if (entries.some((entry) => entry.isIntersecting)) {
        observer.disconnect();
        show();
      }
    },
    { rootMargin: "200px" },
  );
  observer.observe(element);
}

/** The name a person knows a file by: the picked name from the record, else as picked here, else the path's last part. */
function nameOf(record) {
  return record.name || pickedNames.get(record.path) || String(record.path).split("/").pop();
}

/**
 * A file name as nodes that wrap cleanly: besides spaces, a line may break after `_`, `-`, `)` or `]` (a `<wbr>`),
 * so "IMG_20241129_183012.jpg" wraps as "IMG_20241129_" / "183012.jpg", not inside a run of digits; only a run
 * longer than the whole line still breaks where it must (`overflow-wrap: anywhere`).
 * @param {string} name
 * @returns {Node[]}
 */
function breakable(name) {
  const nodes = [];
  for (const part of name.split(/(?<=[_\-)\]])/)) {
    if (nodes.length) nodes.push(document.createElement("wbr"));
    nodes.push(document.createTextNode(part));
  }
  return nodes;
}

/** "12.1 KB · 64 × 40" (the dimensions when the record has them). */
function details(record) {
  const size = formatBytes(record.size);
  return record.width && record.height ? `${size} · ${record.width} × ${record.height}` : size;
}

/**
 * Show (or refresh) a photo; `record` may lack a URL, which is then fetched. `file` is the picked file it was
 * uploaded from, when there is one: its thumbnail is made from that.
 */
function showPhoto(record, { first = true, locationRemoved = false, file = /** @type {Blob | null} */ (null) } = {}) {
  const name = nameOf(record);
  const item = document.createElement("li");
  item.className = "photo";
  item.dataset.testid = "gallery-item";
  item.dataset.path = record.path;
  item.dataset.name = name;

  const frame = document.createElement("div");
  frame.className = "thumb";
  const img = document.createElement("img");
  img.alt = name;
  img.decoding = "async";
  let refreshed = false;
  img.addEventListener("error", async () => {
    // A signed URL may have expired: ask once for a new one, then give up (e.g. HEIC outside Safari).
    if (!refreshed && client) {
      refreshed = true;
      try {
        img.src = (await client.getDownloadUrl(record.path)).url;
        return;
      } catch {
        // fall through
      }
    }
    frame.classList.add("no-preview");
    frame.dataset.label = "No preview";
  });
  frame.append(img);

  const caption = document.createElement("div");
  caption.className = "caption";
  const title = document.createElement("span");
  title.className = "name";
  title.dataset.testid = "photo-name";
  title.append(...breakable(name));
  title.title = name;
  const size = document.createElement("span");
  size.className = "size";
  size.dataset.testid = "photo-details";
  size.textContent = details(record);
  caption.append(title, size);
  if (locationRemoved || record.location === "stripped") {
    const note = document.createElement("span");
    note.className = "location";
    note.dataset.testid = "location-removed";
    note.textContent = "Location removed";
    caption.append(note);
  }

  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "delete";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete ${name}`);
  remove.addEventListener("click", () => deletePhoto(item, remove));

  item.append(frame, caption, remove);
  const shown = galleryItem(record.path);
  if (shown) removeItem(shown);
  if (first) els.gallery.prepend(item);
  else els.gallery.append(item);
  updateEmpty();

  const display = async (/** @type {Blob | string} */ source, /** @type {string | null} */ url) => {
    const small = await thumbnail(source, thumbnailEdge(frame.clientWidth));
    if (small?.startsWith("blob:")) item.dataset.thumbnail = small;
    else if (small) img.crossOrigin = "anonymous"; // the URL as it is, just fetched with CORS: the same way again
    if (!item.isConnected) removeItem(item); // deleted or replaced meanwhile: let go of the bytes
    else if (small || url) img.src = small ?? /** @type {string} */ (url);
    else img.dispatchEvent(new Event("error"));
  };
  if (file) {
    display(file, record.url ?? null);
    return;
  }
  whenVisible(frame, async () => {
    try {
      const url = record.url ?? (await /** @type {HeraSessionsClient} */ (client).getDownloadUrl(record.path)).url;
      await display(url, url);
    } catch {
      img.dispatchEvent(new Event("error"));
    }
  });
}

async function deletePhoto(item, button) {
  const path = /** @type {string} */ (item.dataset.path);
  const name = item.dataset.name ?? path;
  if (!window.confirm(`Delete “${name}”? It cannot be undone.`)) return;
  clearErrors();
  button.disabled = true;
  try {
    await /** @type {HeraSessionsClient} */ (client).deleteFile(path);
  } catch (err) {
    if (err?.status !== 404) {
      showError(`Could not delete “${name}”. ${describe(err)}`);
      button.disabled = false;
      return;
    }
  }
  // Keep the keyboard where it was: on the next photo's Delete button, else on the heading.
  const next = item.nextElementSibling ?? item.previousElementSibling;
  removeItem(item);
  updateEmpty();
  pickedNames.delete(path);
  say(`Deleted ${name}.`);
  /** @type {HTMLElement} */ (next?.querySelector("button.delete") ?? els.galleryHeading).focus();
}

async function loadGallery() {
  const files = await withSession((c) => c.listFiles());
  clearGallery();
  files
    .slice()
    .sort((a, b) => String(b.uploaded_at ?? "").localeCompare(String(a.uploaded_at ?? "")))
    .forEach((record) => showPhoto(record, { first: false }));
}

// ---------------------------------------------------------------------------------------------------------
// Uploads

function uploadRow(file) {
  const row = document.createElement("li");
  row.className = "upload";
  row.dataset.testid = "upload-row";
  row.dataset.name = file.name;
  row.dataset.path = ""; // known once the client has picked it
  row.dataset.status = "uploading";

  const name = document.createElement("span");
  name.className = "name";
  name.append(...breakable(file.name));
  const progress = document.createElement("progress");
  progress.max = Math.max(file.size, 1);
  progress.value = 0;
  progress.setAttribute("aria-label", `Upload of ${file.name}`);
  const status = document.createElement("span");
  status.className = "row-status";
  status.textContent = "Starting…";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "cancel";
  cancel.textContent = "Cancel";
  cancel.setAttribute("aria-label", `Cancel ${file.name}`);

  row.append(name, progress, status, cancel);
  els.uploads.prepend(row);

  const setStatus = (state, text) => {
    row.dataset.status = state;
    status.textContent = text;
    if (state !== "uploading") cancel.remove();
  };
  return { row, progress, cancel, setStatus };
}

/** A failed row gets a Retry button: the same file again, in a fresh row (the client retried already). */
function offerRetry(row, file) {
  const again = document.createElement("button");
  again.type = "button";
  again.className = "retry";
  again.textContent = "Retry";
  again.setAttribute("aria-label", `Retry ${file.name}`);
  again.addEventListener("click", async () => {
    row.remove();
    clearErrors();
    say(`Uploading ${file.name} again…`);
    if (await uploadOne(file)) say(`${file.name} uploaded.`);
  });
  row.append(again);
}

async function uploadOne(file) {
  const { row, progress, cancel, setStatus } = uploadRow(file);
  const controller = new AbortController();
  inFlight.add(controller);
  cancel.addEventListener("click", () => controller.abort());
  try {
    // The client picks a fresh path for each file (two "image.jpg" never share one), sends the name as picked,
    // and removes location metadata first.
    const record = await withSession((c) =>
      c.upload(file, {
        method: /** @type {any} */ (config.method),
        signal: controller.signal,
        onProgress: ({ loaded, total }) => {
          progress.value = loaded;
          setStatus("uploading", `${Math.floor((loaded / Math.max(total, 1)) * 100)}%`);
        },
      }),
    );
    row.dataset.path = record.path;
    pickedNames.set(record.path, record.name || file.name);
    progress.value = progress.max;
    setStatus("done", record.recorded ? "Uploaded" : "Uploaded (still being processed)");
    showPhoto(record, { locationRemoved: record.sent?.location === "stripped", file });
    return true;
  } catch (err) {
    const text = describe(err, file.name);
    if (err?.code === "aborted") setStatus("cancelled", "Cancelled");
    else {
      // One message per error: the alert above says what went wrong, the row only that this file did not go.
      setStatus("error", "Not uploaded");
      showError(text);
      offerRetry(row, file);
    }
    return false;
  } finally {
    inFlight.delete(controller);
  }
}

async function uploadFiles(fileList) {
  const files = [...(fileList ?? [])];
  els.input.value = ""; // queued: the Upload button must not send these again
  if (files.length === 0) {
    say("Choose photos first.");
    return;
  }
  clearErrors();
  if (!(await ensureSession())) return;
  say(`Uploading ${files.length === 1 ? "1 photo" : `${files.length} photos`}…`);
  const results = await Promise.all(files.map(uploadOne));
  const done = results.filter(Boolean).length;
  say(`${done} of ${files.length} ${files.length === 1 ? "photo" : "photos"} uploaded.`);
}

// ---------------------------------------------------------------------------------------------------------
// Erase

async function eraseSession() {
  if (!window.confirm("Erase this session? Every photo and document in it is deleted now, for good.")) return;
  clearErrors();
  els.eraseButton.disabled = true;
  for (const controller of inFlight) controller.abort();
  try {
    try {
      await client?.erase();
    } catch (err) {
      if (!sessionGone(err)) throw err;
    }
    clearGallery();
    els.uploads.replaceChildren();
    sessionStorage.removeItem(STORAGE_KEY);
    client = null;
    els.sessionId.textContent = "none";
    try {
      await openSession({ fresh: true });
      say("The session was erased. A new, empty session has started.");
    } catch {
      // Where sessions come from the app's backend, the page cannot start one itself.
      say("The session was erased.");
    }
  } catch (err) {
    showError(`The session could not be erased. ${describe(err)}`);
  } finally {
    els.eraseButton.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Wiring

els.input.addEventListener("change", () => {
  if (config.autoUpload) uploadFiles(els.input.files);
});
els.uploadButton.addEventListener("click", () => uploadFiles(els.input.files));
els.eraseButton.addEventListener("click", eraseSession);

for (const type of ["dragenter", "dragover"]) {
  els.dropzone.addEventListener(type, (event) => {
    event.preventDefault();
    els.dropzone.classList.add("dragover");
  });
}
for (const type of ["dragleave", "drop"]) {
  els.dropzone.addEventListener(type, () => els.dropzone.classList.remove("dragover"));
}
els.dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  uploadFiles(event.dataTransfer?.files);
});
// A file dropped next to the zone must not make the browser leave the page to open it.
for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());

async function start() {
  updateEmpty();
  try {
    await openSession();
    await loadGallery();
  } catch (err) {
    showError(`The photo service could not be reached. ${describe(err)}`);
  }
}

start();
