/**
 * Remove location metadata from JPEG, PNG and WebP bytes, without re-encoding: pure byte manipulation.
 *
 * - EXIF (JPEG APP1 `Exif\0\0`, PNG `eXIf`, WebP `EXIF`): the GPS IFD is zeroed in place and its pointer
 *   (tag 0x8825) is taken out of IFD0 (and IFD1), so every other byte, orientation included, stays where it was.
 *   EXIF that cannot be read is dropped whole (no location can then leave in it).
 * - XMP (JPEG APP1, PNG iTXt/tEXt `XML:com.adobe.xmp`, WebP `XMP `) that names a place or a GPS position is
 *   dropped whole; so is JPEG APP13 IPTC with location datasets, and PNG raw EXIF text chunks.
 * - WebP: a dropped chunk fixes the RIFF size and clears its VP8X flag.
 *
 * @module hera-location
 */

const TYPE_SIZES = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4]; // TIFF field types 1..13 (13 = IFD)
const GPS_POINTER = 0x8825;
const EXIF_HEADER = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const XMP_LOCATION =
  /GPS(?:Latitude|Longitude|Altitude|Position|DestLatitude|DestLongitude|AreaInformation)|photoshop:(?:City|State|Country)|Iptc4xmpCore:(?:Location|CountryCode)|Iptc4xmpExt:Location(?:Created|Shown)|LocationCreated|LocationShown/;
/** IPTC record 2 datasets that name a place: content location, city, sublocation, province, country. */
const IPTC_LOCATION = new Set([26, 27, 90, 92, 95, 100, 101]);

/** @typedef {"none" | "stripped"} LocationOutcome */

/**
 * @typedef {object} StripResult
 * @property {Uint8Array} bytes the cleaned bytes (the input itself when nothing was removed)
 * @property {LocationOutcome | "unchecked"} location "unchecked": not a JPEG, PNG or WebP
 * @property {string} format "jpeg" | "png" | "webp" | "other"
 * @property {string[]} removed what was removed, e.g. ["exif-gps"], ["xmp"]
 */

const startsWith = (b, at, sig) => at + sig.length <= b.length && sig.every((v, i) => b[at + i] === v);
const ascii = (text) => [...text].map((c) => c.charCodeAt(0));
const latin1 = (b) => {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
};

/** What kind of image `bytes` hold, from their first bytes. */
export function sniffFormat(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (startsWith(b, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png";
  if (startsWith(b, 0, ascii("RIFF")) && startsWith(b, 8, ascii("WEBP"))) return "webp";
  return "other";
}

/**
 * Remove the GPS IFD from TIFF data (EXIF's body) in place: zero the GPS IFD and the values it points to, and
 * take its pointer out of IFD0 (and IFD1). Returns "none", "stripped", or "unreadable".
 *
 * @param {Uint8Array} t the TIFF bytes (changed in place)
 * @returns {"none" | "stripped" | "unreadable"}
 */
export function stripTiffGps(t) {
  if (t.length < 8) return "unreadable";
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength);
  let le;
  if (t[0] === 0x49 && t[1] === 0x49) le = true;
  else if (t[0] === 0x4d && t[1] === 0x4d) le = false;
  else return "unreadable";
  if (view.getUint16(2, le) !== 42) return "unreadable";
  const u16 = (at) => view.getUint16(at, le);
  const u32 = (at) => view.getUint32(at, le);
  const zero = (from, to) => t.fill(0, Math.max(0, from), Math.min(t.length, to));

  let outcome = /** @type {"none" | "stripped"} */ ("none");
  let ifd = u32(4);
  for (let depth = 0; depth < 2 && ifd !== 0; depth += 1) {
    if (ifd + 2 > t.length) return "unreadable";
    const count = u16(ifd);
    const end = ifd + 2 + 12 * count; // the next-IFD offset follows
    if (end + 4 > t.length) return "unreadable";
    let next = u32(end);
    for (let i = 0; i < count; i += 1) {
      const entry = ifd + 2 + 12 * i;
      if (u16(entry) !== GPS_POINTER) continue;
      const gps = u32(entry + 8);
      if (gps + 2 <= t.length) {
        const n = u16(gps);
        for (let j = 0; j < n && gps + 2 + 12 * (j + 1) <= t.length; j += 1) {
          const e = gps + 2 + 12 * j;
          const size = (TYPE_SIZES[u16(e + 2)] ?? 0) * u32(e + 4);
          if (size > 4) zero(u32(e + 8), u32(e + 8) + size);
        }
        zero(gps, gps + 2 + 12 * n + 4);
      }
      // Take the entry out: the later entries and the next-IFD offset move up 12 bytes; the freed 12 are zeroed.
      t.copyWithin(entry, entry + 12, end + 4);
      zero(end - 8, end + 4);
      view.setUint16(ifd, count - 1, le);
      next = u32(end - 12);
      outcome = "stripped";
      break;
    }
    ifd = next;
  }
  return outcome;
}

/** Strip an EXIF payload (TIFF, maybe behind `Exif\0\0`) in a copy; null when it held no GPS. */
function cleanExif(payload) {
  const copy = payload.slice();
  const tiff = startsWith(copy, 0, EXIF_HEADER) ? copy.subarray(6) : copy;
  const outcome = stripTiffGps(tiff);
  return { outcome, bytes: copy };
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

// -- JPEG --------------------------------------------------------------------------------------------------

function iptcHasLocation(segment) {
  // Photoshop image resources: "8BIM", id (2), Pascal name (even), size (4), data (even).
  let at = 14; // after "Photoshop 3.0\0"
  const view = new DataView(segment.buffer, segment.byteOffset, segment.byteLength);
  while (at + 12 <= segment.length && startsWith(segment, at, ascii("8BIM"))) {
    const id = view.getUint16(at + 4);
    const nameLength = segment[at + 6];
    const sizeAt = at + 6 + ((nameLength + 2) & ~1);
    if (sizeAt + 4 > segment.length) return true; // unreadable: treat as if it had a place
    const size = view.getUint32(sizeAt);
    const data = segment.subarray(sizeAt + 4, Math.min(segment.length, sizeAt + 4 + size));
    if (id === 0x0404) {
      for (let i = 0; i + 5 <= data.length; ) {
        if (data[i] !== 0x1c) break;
        if (data[i + 1] === 2 && IPTC_LOCATION.has(data[i + 2])) return true;
        i += 5 + ((data[i + 3] << 8) | data[i + 4]);
      }
    }
    at = sizeAt + 4 + ((size + 1) & ~1);
  }
  return false;
}

function stripJpeg(b) {
  const parts = [b.subarray(0, 2)];
  const removed = [];
  let at = 2;
  while (at + 4 <= b.length && b[at] === 0xff) {
    const marker = b[at + 1];
    if (marker === 0xff) {
      parts.push(b.subarray(at, at + 1)); // a fill byte
      at += 1;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break; // start of scan (image data) or end: no more metadata
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      parts.push(b.subarray(at, at + 2));
      at += 2;
      continue;
    }
    const end = at + 2 + ((b[at + 2] << 8) | b[at + 3]);
    if (end > b.length) break;
    const segment = b.subarray(at, end);
    const body = segment.subarray(4);
    if (marker === 0xe1 && startsWith(body, 0, EXIF_HEADER)) {
      const { outcome, bytes } = cleanExif(body);
      if (outcome === "unreadable") removed.push("exif");
      else if (outcome === "stripped") {
        removed.push("exif-gps");
        parts.push(segment.subarray(0, 4), bytes);
      } else parts.push(segment);
    } else if (
      marker === 0xe1 &&
      (startsWith(body, 0, ascii("http://ns.adobe.com/xap/1.0/\0")) ||
        startsWith(body, 0, ascii("http://ns.adobe.com/xmp/extension/\0"))) &&
      XMP_LOCATION.test(latin1(body))
    ) {
      removed.push("xmp");
    } else if (marker === 0xed && startsWith(body, 0, ascii("Photoshop 3.0\0")) && iptcHasLocation(body)) {
      removed.push("iptc");
    } else {
      parts.push(segment);
    }
    at = end;
  }
  parts.push(b.subarray(at));
  return { parts, removed };
}

// -- PNG ---------------------------------------------------------------------------------------------------

let crcTable;
function crc32(bytes) {
  crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let c = 0xffffffff;
  for (const byte of bytes) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(type, 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function pngTextHasLocation(type, data) {
  const zero = data.indexOf(0);
  const keyword = latin1(data.subarray(0, zero < 0 ? data.length : zero));
  if (/^Raw profile type (?:exif|APP1|iptc|xmp)$/i.test(keyword)) return true; // hex-encoded EXIF/IPTC/XMP
  if (keyword !== "XML:com.adobe.xmp") return false;
  if (type === "zTXt" || (type === "iTXt" && data[zero + 1] === 1)) return true; // compressed: not read
  return XMP_LOCATION.test(latin1(data));
}

function stripPng(b) {
  const parts = [b.subarray(0, 8)];
  const removed = [];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 8;
  while (at + 12 <= b.length) {
    const length = view.getUint32(at);
    const end = at + 12 + length;
    if (end > b.length) break;
    const type = latin1(b.subarray(at + 4, at + 8));
    const data = b.subarray(at + 8, at + 8 + length);
    const chunk = b.subarray(at, end);
    if (type === "eXIf") {
      const { outcome, bytes } = cleanExif(data);
      if (outcome === "unreadable") removed.push("exif");
      else if (outcome === "stripped") {
        removed.push("exif-gps");
        parts.push(pngChunk(b.subarray(at + 4, at + 8), bytes));
      } else parts.push(chunk);
    } else if ((type === "iTXt" || type === "tEXt" || type === "zTXt") && pngTextHasLocation(type, data)) {
      removed.push(type === "tEXt" && !latin1(data).startsWith("XML:") ? "exif" : "xmp");
    } else {
      parts.push(chunk);
    }
    at = end;
    if (type === "IEND") break;
  }
  parts.push(b.subarray(at));
  return { parts, removed };
}

// -- WebP --------------------------------------------------------------------------------------------------

function stripWebp(b) {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const parts = [];
  const removed = [];
  let clearFlags = 0;
  let vp8x = -1; // index in parts of the VP8X chunk (copied, so that its flags can change)
  let at = 12;
  while (at + 8 <= b.length) {
    const fourcc = latin1(b.subarray(at, at + 4));
    const size = view.getUint32(at + 4, true);
    const end = Math.min(b.length, at + 8 + size + (size & 1));
    if (at + 8 + size > b.length) break;
    const chunk = b.subarray(at, end);
    const data = b.subarray(at + 8, at + 8 + size);
    if (fourcc === "VP8X") {
      vp8x = parts.length;
      parts.push(chunk.slice());
    } else if (fourcc === "EXIF") {
      const { outcome, bytes } = cleanExif(data);
      if (outcome === "unreadable") {
        removed.push("exif");
        clearFlags |= 0x08;
      } else if (outcome === "stripped") {
        removed.push("exif-gps");
        parts.push(chunk.subarray(0, 8), bytes, chunk.subarray(8 + size));
      } else parts.push(chunk);
    } else if (fourcc === "XMP " && XMP_LOCATION.test(latin1(data))) {
      removed.push("xmp");
      clearFlags |= 0x04;
    } else {
      parts.push(chunk);
    }
    at = end;
  }
  parts.push(b.subarray(at));
  if (vp8x >= 0 && clearFlags) parts[vp8x][8] &= ~clearFlags;
  const header = b.slice(0, 12);
  const total = 12 + parts.reduce((n, p) => n + p.length, 0);
  new DataView(header.buffer).setUint32(4, total - 8, true);
  return { parts: [header, ...parts], removed };
}

/**
 * Remove location metadata from a JPEG, PNG or WebP (see the module's notes); other formats are returned as
 * they are with `location: "unchecked"`.
 *
 * @param {ArrayBuffer | Uint8Array} input
 * @returns {StripResult}
 */
export function stripLocation(input) {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  const format = sniffFormat(bytes);
  const strip = { jpeg: stripJpeg, png: stripPng, webp: stripWebp }[format];
  if (!strip) return { bytes, location: "unchecked", format, removed: [] };
  const { parts, removed } = strip(bytes);
  if (removed.length === 0) return { bytes, location: "none", format, removed };
  return { bytes: concat(parts), location: "stripped", format, removed };
}
