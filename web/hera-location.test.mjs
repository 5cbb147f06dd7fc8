// Run with: node --test web/
// Location metadata, names, paths and MD5, on hand-built JPEG / PNG / WebP bytes.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { crc32 } from "node:zlib";

import {
  HeraSessionsClient,
  asciiSlug,
  displayName,
  md5Base64,
  stripLocation,
  uniquePath,
  withoutLocation,
} from "./hera-sessions.js";

const enc = (text) => new TextEncoder().encode(text);
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const indexOf = (hay, needle) => {
  outer: for (let i = 0; i + needle.length <= hay.length; i += 1) {
    for (let j = 0; j < needle.length; j += 1) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
};

// -- a TIFF (EXIF body) writer and reader, independent of the code under test ------------------------------

/** Latitude 51° 30' 26.53": its rationals are unique bytes to look for. */
const LATITUDE = [[51, 1], [30, 1], [2653, 100]];
const LONGITUDE = [[7, 1], [5, 1], [4711, 100]];

/**
 * TIFF with IFD0 {Make, Orientation 6, GPS pointer, PrintIM}, a GPS IFD {version, N, latitude, E, longitude}
 * and IFD1 {Compression 6}; `le` picks the byte order.
 */
function tiff(le, { gps = true } = {}) {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  b.set(enc(le ? "II" : "MM"));
  v.setUint16(2, 42, le);
  v.setUint32(4, 8, le);
  const ifd0 = gps
    ? [[0x010f, 2, 4, enc("Cam\0")], [0x0112, 3, 1, 6], [0x8825, 4, 1, "gps"], [0xc4a5, 7, 4, enc("PIM1")]]
    : [[0x010f, 2, 4, enc("Cam\0")], [0x0112, 3, 1, 6], [0xc4a5, 7, 4, enc("PIM1")]];
  const ifd0At = 8;
  const gpsAt = ifd0At + 2 + 12 * ifd0.length + 4;
  const gpsEntries = 5;
  const ifd1At = gpsAt + 2 + 12 * gpsEntries + 4;
  const dataAt = ifd1At + 2 + 12 + 4;
  const entry = (at, [tag, type, count, value]) => {
    v.setUint16(at, tag, le);
    v.setUint16(at + 2, type, le);
    v.setUint32(at + 4, count, le);
    if (value === "gps") v.setUint32(at + 8, gpsAt, le);
    else if (value instanceof Uint8Array) b.set(value, at + 8);
    else if (type === 3) v.setUint16(at + 8, value, le);
    else v.setUint32(at + 8, value, le);
  };
  v.setUint16(ifd0At, ifd0.length, le);
  ifd0.forEach((e, i) => entry(ifd0At + 2 + 12 * i, e));
  v.setUint32(ifd0At + 2 + 12 * ifd0.length, ifd1At, le);
  if (gps) {
    const rationals = (at, values) => values.forEach(([n, d], i) => (v.setUint32(at + 8 * i, n, le), v.setUint32(at + 8 * i + 4, d, le)));
    rationals(dataAt, LATITUDE);
    rationals(dataAt + 24, LONGITUDE);
    v.setUint16(gpsAt, gpsEntries, le);
    [
      [0x0000, 1, 4, new Uint8Array([2, 3, 0, 0])],
      [0x0001, 2, 2, enc("N\0\0\0")],
      [0x0002, 5, 3, dataAt],
      [0x0003, 2, 2, enc("E\0\0\0")],
      [0x0004, 5, 3, dataAt + 24],
    ].forEach((e, i) => entry(gpsAt + 2 + 12 * i, e));
  }
  v.setUint16(ifd1At, 1, le);
  entry(ifd1At + 2, [0x0103, 3, 1, 6]);
  return b.slice(0, dataAt + 48);
}

/** tag → inline value of IFD0 and IFD1 (SHORT/LONG as numbers). */
function readTiff(t) {
  const v = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const le = t[0] === 0x49;
  assert.equal(v.getUint16(2, le), 42);
  const ifds = [];
  for (let at = v.getUint32(4, le); at !== 0 && ifds.length < 3; ) {
    const n = v.getUint16(at, le);
    const tags = {};
    for (let i = 0; i < n; i += 1) {
      const e = at + 2 + 12 * i;
      const type = v.getUint16(e + 2, le);
      tags[v.getUint16(e, le)] = type === 3 ? v.getUint16(e + 8, le) : v.getUint32(e + 8, le);
    }
    ifds.push(tags);
    at = v.getUint32(at + 2 + 12 * n, le);
  }
  return ifds;
}

const rationalBytes = (le, [n, d]) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, n, le);
  new DataView(b.buffer).setUint32(4, d, le);
  return b;
};

function assertNoGps(bytes, le) {
  assert.equal(indexOf(bytes, rationalBytes(le, LATITUDE[2])), -1, "the latitude is gone");
  assert.equal(indexOf(bytes, rationalBytes(le, LONGITUDE[2])), -1, "the longitude is gone");
}

// -- JPEG, PNG, WebP builders --------------------------------------------------------------------------

const segment = (marker, body) => cat(new Uint8Array([0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff]), body);
const XMP_GPS = enc(
  'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description exif:GPSLatitude="51,30.44N"/></rdf:RDF></x:xmpmeta>',
);
/** Everything from DQT on: the "image" (tables, frame, scan with stuffed bytes, EOI). */
const JPEG_IMAGE = cat(
  segment(0xdb, new Uint8Array(65).fill(1)),
  segment(0xc0, new Uint8Array([8, 0, 2, 0, 2, 1, 1, 0x11, 0])),
  segment(0xda, new Uint8Array([1, 1, 0, 0, 0x3f, 0])),
  new Uint8Array([0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56]),
  new Uint8Array([0xff, 0xd9]),
);
const JFIF = segment(0xe0, cat(enc("JFIF\0"), new Uint8Array([1, 1, 0, 0, 1, 0, 1, 0, 0])));

function jpeg(le, extra = []) {
  return cat(new Uint8Array([0xff, 0xd8]), JFIF, segment(0xe1, cat(enc("Exif\0\0"), tiff(le))), ...extra, JPEG_IMAGE);
}

function pngChunk(type, data) {
  const head = new Uint8Array(8);
  new DataView(head.buffer).setUint32(0, data.length);
  head.set(enc(type), 4);
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32(cat(enc(type), data)));
  return cat(head, data, crc);
}
const PNG_SIG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const IHDR = pngChunk("IHDR", new Uint8Array([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
const IDAT = pngChunk("IDAT", new Uint8Array([0x78, 0x9c, 0x63, 0x60, 0x60, 0x60, 0, 0, 0, 4, 0, 1]));
const IEND = pngChunk("IEND", new Uint8Array());

/** PNG chunks: [type, data] for each (checks every CRC). */
function pngChunks(b) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const chunks = [];
  for (let at = 8; at < b.length; ) {
    const n = v.getUint32(at);
    const type = new TextDecoder().decode(b.subarray(at + 4, at + 8));
    const data = b.subarray(at + 8, at + 8 + n);
    assert.equal(v.getUint32(at + 8 + n), crc32(b.subarray(at + 4, at + 8 + n)), `${type} CRC`);
    chunks.push([type, data]);
    at += 12 + n;
  }
  return chunks;
}

function riffChunk(fourcc, data) {
  const head = new Uint8Array(8);
  head.set(enc(fourcc));
  new DataView(head.buffer).setUint32(4, data.length, true);
  return cat(head, data, data.length & 1 ? new Uint8Array(1) : new Uint8Array());
}
function webp(chunks) {
  const body = cat(enc("WEBP"), ...chunks);
  const head = new Uint8Array(8);
  head.set(enc("RIFF"));
  new DataView(head.buffer).setUint32(4, body.length, true);
  return cat(head, body);
}
const VP8 = riffChunk("VP8 ", new Uint8Array(31).fill(7)); // odd size: a pad byte follows
const vp8x = (flags) => riffChunk("VP8X", new Uint8Array([flags, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
const XMP_WEBP = riffChunk("XMP ", enc('<x:xmpmeta><rdf:Description exif:GPSLongitude="7,5.78E"/></x:xmpmeta>'));

/** WebP chunks: [fourcc, data]; checks the RIFF size. */
function riffChunks(b) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  assert.equal(v.getUint32(4, true), b.length - 8, "RIFF size");
  const chunks = [];
  for (let at = 12; at < b.length; ) {
    const n = v.getUint32(at + 4, true);
    chunks.push([new TextDecoder().decode(b.subarray(at, at + 4)), b.subarray(at + 8, at + 8 + n)]);
    at += 8 + n + (n & 1);
  }
  return chunks;
}

// -- the tests -------------------------------------------------------------------------------------------

describe("stripLocation: JPEG", () => {
  for (const le of [true, false]) {
    it(`${le ? "little" : "big"}-endian EXIF: GPS gone, orientation 6 and IFD1 kept, image data identical`, () => {
      const input = jpeg(le);
      const { bytes, location, removed, format } = stripLocation(input);
      assert.deepEqual([format, location, removed], ["jpeg", "stripped", ["exif-gps"]]);
      assert.equal(bytes.length, input.length, "GPS is zeroed in place: no byte moves");
      assertNoGps(bytes, le);
      const exifAt = indexOf(bytes, enc("Exif\0\0"));
      const ifds = readTiff(bytes.subarray(exifAt + 6));
      assert.equal(ifds[0][0x0112], 6, "orientation kept");
      assert.ok(!(0x8825 in ifds[0]), "no GPS pointer");
      assert.ok(0x010f in ifds[0] && 0xc4a5 in ifds[0], "the other tags kept");
      assert.deepEqual(ifds[1], { 0x0103: 6 }, "IFD1 still linked");
      assert.deepEqual(bytes.subarray(bytes.length - JPEG_IMAGE.length), JPEG_IMAGE);
      assert.deepEqual(bytes.subarray(0, 2 + JFIF.length), input.subarray(0, 2 + JFIF.length));
      // The only bytes that changed are inside the TIFF.
      const tiffEnd = exifAt + 6 + tiff(le).length;
      for (let i = 0; i < input.length; i += 1) if (i < exifAt || i >= tiffEnd) assert.equal(bytes[i], input[i]);
    });
  }

  it("drops XMP and IPTC that name a place; keeps XMP without one", () => {
    const plainXmp = segment(0xe1, enc("http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><dc:title>Hi</dc:title></x:xmpmeta>"));
    const iptc = (dataset) =>
      segment(
        0xed,
        cat(enc("Photoshop 3.0\0"), enc("8BIM"), new Uint8Array([4, 4, 0, 0, 0, 0, 0, 9]), new Uint8Array([0x1c, 2, dataset, 0, 4]), enc("Rome"), new Uint8Array(1)),
      );
    const input = jpeg(true, [segment(0xe1, XMP_GPS), plainXmp, iptc(90), iptc(5)]);
    const { bytes, removed } = stripLocation(input);
    assert.deepEqual(removed, ["exif-gps", "xmp", "iptc"]);
    assert.equal(indexOf(bytes, enc("GPSLatitude")), -1);
    assert.equal(indexOf(bytes, enc("Rome")) >= 0, true, "the IPTC without a place (dataset 5, title) stays");
    assert.ok(indexOf(bytes, plainXmp) >= 0);
    assert.deepEqual(bytes.subarray(bytes.length - JPEG_IMAGE.length), JPEG_IMAGE);
  });

  it("without GPS: the same bytes back, location none", () => {
    const input = cat(new Uint8Array([0xff, 0xd8]), segment(0xe1, cat(enc("Exif\0\0"), tiff(true, { gps: false }))), JPEG_IMAGE);
    const result = stripLocation(input);
    assert.equal(result.location, "none");
    assert.equal(result.bytes, input);
  });

  it("EXIF it cannot read is dropped whole", () => {
    const input = cat(new Uint8Array([0xff, 0xd8]), segment(0xe1, cat(enc("Exif\0\0"), enc("XX\0*garbage"))), JPEG_IMAGE);
    const { bytes, removed } = stripLocation(input);
    assert.deepEqual(removed, ["exif"]);
    assert.deepEqual(bytes, cat(new Uint8Array([0xff, 0xd8]), JPEG_IMAGE));
  });
});

describe("stripLocation: PNG eXIf", () => {
  for (const le of [true, false]) {
    it(`${le ? "II" : "MM"}: GPS gone, orientation kept, CRC fixed, the other chunks identical`, () => {
      const input = cat(PNG_SIG, IHDR, pngChunk("eXIf", tiff(le)), IDAT, IEND);
      const { bytes, location } = stripLocation(input);
      assert.equal(location, "stripped");
      assertNoGps(bytes, le);
      const chunks = pngChunks(bytes);
      assert.deepEqual(chunks.map(([t]) => t), ["IHDR", "eXIf", "IDAT", "IEND"]);
      assert.equal(readTiff(chunks[1][1])[0][0x0112], 6);
      assert.deepEqual(bytes.subarray(bytes.length - IDAT.length - IEND.length), cat(IDAT, IEND));
    });
  }

  it("drops XMP text with a position", () => {
    const xmp = pngChunk("iTXt", cat(enc("XML:com.adobe.xmp\0\0\0\0\0"), XMP_GPS.subarray(29)));
    const { bytes, removed } = stripLocation(cat(PNG_SIG, IHDR, xmp, IDAT, IEND));
    assert.deepEqual(removed, ["xmp"]);
    assert.deepEqual(pngChunks(bytes).map(([t]) => t), ["IHDR", "IDAT", "IEND"]);
  });
});

describe("stripLocation: WebP", () => {
  it("EXIF: GPS gone in place, orientation kept; XMP with a place dropped, RIFF size and VP8X flags fixed", () => {
    const input = webp([vp8x(0x08 | 0x04 | 0x10), VP8, riffChunk("EXIF", tiff(true)), XMP_WEBP]);
    const { bytes, removed } = stripLocation(input);
    assert.deepEqual(removed, ["exif-gps", "xmp"]);
    assertNoGps(bytes, true);
    const chunks = riffChunks(bytes);
    assert.deepEqual(chunks.map(([f]) => f), ["VP8X", "VP8 ", "EXIF"]);
    assert.equal(chunks[0][1][0], 0x08 | 0x10, "XMP flag cleared, EXIF and alpha flags kept");
    assert.equal(readTiff(chunks[2][1])[0][0x0112], 6);
    assert.deepEqual(bytes.subarray(12 + 18, 12 + 18 + VP8.length), VP8, "image data identical");
  });

  it("unreadable EXIF is dropped and its flag cleared", () => {
    const input = webp([vp8x(0x08), VP8, riffChunk("EXIF", enc("nonsense"))]);
    const { bytes, removed } = stripLocation(input);
    assert.deepEqual(removed, ["exif"]);
    const chunks = riffChunks(bytes);
    assert.deepEqual(chunks.map(([f]) => f), ["VP8X", "VP8 "]);
    assert.equal(chunks[0][1][0], 0);
  });
});

describe("names and paths", () => {
  it("slugs: accents dropped, a few letters spelt out, the rest dropped", () => {
    assert.equal(asciiSlug("Crème brûlée (2)"), "creme-brulee-2");
    assert.equal(asciiSlug("Straße Ødegård"), "strasse-odegard");
    assert.equal(asciiSlug("祖母"), "");
    assert.equal(asciiSlug("IMG_0001"), "img-0001");
  });

  it("unique paths: one per pick, even for the same name, never a taken one; the extension fits the type", () => {
    const taken = new Set();
    const picks = ["祖母.jpg", "祖父.jpg", "image.jpg", "image.jpg", "Harbour Walk.JPG", "scan", "x.jpeg"];
    const paths = picks.map((name) => uniquePath({ name, type: "image/jpeg" }, { taken }));
    assert.equal(new Set(paths).size, picks.length);
    assert.equal(taken.size, picks.length);
    for (const path of paths) assert.match(path, /^photos\/[a-z0-9-]+-[a-z0-9]{8}\.jpe?g$/);
    assert.match(paths[0], /^photos\/photo-[a-z0-9]{8}\.jpg$/);
    assert.match(paths[4], /^photos\/harbour-walk-[a-z0-9]{8}\.jpg$/);
    assert.match(paths[6], /\.jpeg$/);
    assert.match(uniquePath({ name: "a.png", type: "image/webp" }, { prefix: "" }), /^a-[a-z0-9]{8}\.webp$/);
    assert.ok(new TextEncoder().encode(uniquePath("x".repeat(400) + ".png")).length <= 256);
  });

  it("names: NFC, no control characters, at most 255 UTF-8 bytes, extension kept", () => {
    assert.equal(displayName("Cafe\u0301.jpg"), "Café.jpg");
    assert.equal(displayName("C:\\fakepath\\祖母.jpg"), "祖母.jpg");
    assert.equal(displayName("a\u0000b\u001f.png"), "ab.png");
    const long = displayName(`${"祖".repeat(100)}.jpg`);
    assert.ok(new TextEncoder().encode(long).length <= 255);
    assert.ok(long.endsWith(".jpg"));
    assert.equal(displayName(""), undefined);
  });
});

describe("md5Base64", () => {
  it("equals Node's MD5, over many chunks and for an empty file", async () => {
    const data = new Uint8Array(100_003).map((_, i) => (i * 7919) % 251);
    const want = createHash("md5").update(data).digest("base64");
    assert.equal(await md5Base64(new Blob([data]), { chunkSize: 4096 }), want);
    assert.equal(await md5Base64(new Blob([data])), want);
    assert.equal(await md5Base64(new Blob([])), "1B2M2Y8AsgTpgAmY7PhCfg==");
  });
});

// -- the upload, against a fake API and storage ---------------------------------------------------------

const SESSION = "S".repeat(32);
const base = `/v1/sessions/${SESSION}`;
const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

function fakeXhr(handler = () => ({ status: 200, headers: { ETag: '"e"' } })) {
  const sent = [];
  class FakeXMLHttpRequest {
    upload = {};
    status = 0;
    responseText = "";
    #answer = {};
    open(method, url) {
      Object.assign(this, { method, url, requestHeaders: {} });
    }
    setRequestHeader(name, value) {
      this.requestHeaders[name] = value;
    }
    getResponseHeader(name) {
      return this.#answer[name.toLowerCase()] ?? null;
    }
    send(body) {
      this.body = body;
      sent.push(this);
      setTimeout(async () => {
        const answer = await handler(this);
        this.status = answer.status;
        this.#answer = Object.fromEntries(Object.entries(answer.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
        this.onload();
      }, 1);
    }
    abort() {}
  }
  return { XHR: FakeXMLHttpRequest, sent };
}

/** A fake API that keeps files: tickets refuse taken paths with 409 file_exists unless `overwrite`. */
function fakeApi({ existing = [], protocol = "put", headers = {}, refuse } = {}) {
  const files = new Map(existing.map((path) => [path, { path, size: 1, content_type: "image/jpeg", etag: "x" }]));
  const requests = [];
  const pending = new Map();
  const fetch = async (url, init = {}) => {
    const { pathname } = new URL(url);
    const body = init.body ? JSON.parse(init.body) : undefined;
    if (init.method === "GET" && pathname === `${base}/files`) return json(200, { files: [...files.values()] });
    if (init.method === "POST" && pathname === `${base}/uploads`) {
      requests.push(body);
      const refusal = refuse?.(body);
      if (refusal) return refusal;
      if (files.has(body.path) && !body.overwrite) return json(409, { error: { code: "file_exists", message: "Taken." } });
      pending.set(body.path, body);
      const ticketHeaders = { "Content-Type": body.content_type, ...headers };
      if (body.content_md5) ticketHeaders["Content-MD5"] = body.content_md5;
      return json(201, { protocol, method: "PUT", url: `https://store.test/${body.path}`, headers: ticketHeaders, block_size: 4 });
    }
    const file = pathname.slice(`${base}/files/`.length);
    if (init.method === "GET" && pending.has(file)) {
      const { size, content_type, name = null, content_md5 = null } = pending.get(file);
      files.set(file, { path: file, size, content_type, name, content_md5, etag: "e", url: "https://dl" });
      return json(200, files.get(file));
    }
    return json(404, { error: { code: "not_found", message: "No." } });
  };
  return { fetch, requests, files };
}

const client = (fetch, XHR) =>
  new HeraSessionsClient({ baseUrl: "http://api.test", sessionId: SESSION, token: "t", fetch, XMLHttpRequest: XHR, retryDelay: 1 });

describe("upload: names, paths, MD5, location", () => {
  it("four picks, two named image.jpg: four paths, each with its NFC name and the MD5 of the bytes sent", async () => {
    const api = fakeApi();
    const { XHR, sent } = fakeXhr();
    const c = client(api.fetch, XHR);
    const picks = ["祖母.jpg", "祖父.jpg", "image.jpg", "image.jpg"].map((name, i) => new File([`photo ${i}`], name, { type: "image/jpeg" }));
    const records = await Promise.all(picks.map((file) => c.upload(file)));
    assert.equal(new Set(records.map((r) => r.path)).size, 4);
    assert.deepEqual(records.map((r) => r.name), ["祖母.jpg", "祖父.jpg", "image.jpg", "image.jpg"]);
    for (const [i, request] of api.requests.entries()) {
      assert.equal(request.content_md5, createHash("md5").update(`photo ${i}`).digest("base64"));
      assert.equal(request.overwrite, undefined);
    }
    assert.deepEqual(sent.map((r) => r.requestHeaders["Content-MD5"]), api.requests.map((r) => r.content_md5));
    assert.deepEqual(records.map((r) => r.sent.location), ["unchecked", "unchecked", "unchecked", "unchecked"]);
  });

  it("a taken path (409 file_exists) makes it pick another and try once more; the listing is read once", async () => {
    const api = fakeApi({ existing: ["photos/old.jpg"] });
    let lists = 0;
    let first = true;
    const fetch = async (url, init) => {
      if (init.method === "GET" && new URL(url).pathname === `${base}/files`) lists += 1;
      // Another tab takes the first path picked, after this client listed the files.
      if (first && init.method === "POST") {
        first = false;
        const { path } = JSON.parse(init.body);
        api.files.set(path, { path, size: 1 });
      }
      return api.fetch(url, init);
    };
    const c = client(fetch, fakeXhr().XHR);
    const record = await c.upload(new File(["x"], "a.jpg", { type: "image/jpeg" }));
    assert.equal(api.requests.length, 2);
    assert.notEqual(api.requests[0].path, api.requests[1].path);
    assert.equal(record.path, api.requests[1].path);
    await c.upload(new File(["y"], "a.jpg", { type: "image/jpeg" }));
    assert.equal(lists, 1);
    assert.ok(!api.requests.slice(1).some((r) => r.path === "photos/old.jpg"));
  });

  it("an explicit path that is taken fails with file_exists; overwrite: true replaces it", async () => {
    const api = fakeApi({ existing: ["photos/me.jpg"] });
    const c = client(api.fetch, fakeXhr().XHR);
    const file = new File(["x"], "me.jpg", { type: "image/jpeg" });
    await assert.rejects(c.upload(file, { path: "photos/me.jpg" }), { code: "file_exists", status: 409 });
    const record = await c.upload(file, { path: "photos/me.jpg", overwrite: true });
    assert.equal(record.path, "photos/me.jpg");
    assert.equal(api.requests.at(-1).overwrite, true);
  });

  it("a JPEG's GPS never leaves: the bytes sent are the stripped ones, and their MD5 is the one sent", async () => {
    const api = fakeApi();
    const { XHR, sent } = fakeXhr();
    const input = jpeg(true);
    const record = await client(api.fetch, XHR).upload(new File([input], "trip.jpg", { type: "image/jpeg" }));
    const body = new Uint8Array(await sent[0].body.arrayBuffer());
    assertNoGps(body, true);
    assert.equal(readTiff(body.subarray(indexOf(body, enc("Exif\0\0")) + 6))[0][0x0112], 6);
    assert.equal(api.requests[0].content_md5, createHash("md5").update(body).digest("base64"));
    assert.equal(api.requests[0].size, body.length);
    assert.deepEqual(record.sent.removed, ["exif-gps"]);
    // keepLocation sends the file as it is
    const kept = fakeXhr();
    await client(fakeApi().fetch, kept.XHR).upload(new File([input], "trip.jpg", { type: "image/jpeg" }), { keepLocation: true });
    assert.deepEqual(new Uint8Array(await kept.sent[0].body.arrayBuffer()), input);
  });

  it("withoutLocation leaves a file without location as the same Blob", async () => {
    const file = new File([cat(PNG_SIG, IHDR, IDAT, IEND)], "a.png", { type: "image/png" });
    const result = await withoutLocation(file);
    assert.equal(result.blob, file);
    assert.equal(result.location, "none");
  });

  it("every protocol sends the ticket's If-None-Match and Content-MD5 where they belong", async () => {
    const guard = { "If-None-Match": "*" };
    // put: as given
    let api = fakeApi({ headers: guard });
    let xhr = fakeXhr();
    await client(api.fetch, xhr.XHR).upload(new File(["abc"], "a.jpg", { type: "image/jpeg" }));
    assert.equal(xhr.sent[0].requestHeaders["If-None-Match"], "*");
    assert.equal(xhr.sent[0].requestHeaders["Content-MD5"], "kAFQmDzST7DWlj99KOF/cg==");
    // azure-blocks: not on Put Block; the conditions and x-ms-blob-content-md5 on Put Block List
    api = fakeApi({ protocol: "azure-blocks", headers: guard });
    xhr = fakeXhr(() => ({ status: 201, headers: { ETag: '"e"' } }));
    await client(api.fetch, xhr.XHR).upload(new File(["abcdef"], "a.jpg", { type: "image/jpeg" }));
    const blocks = xhr.sent.filter((r) => r.url.includes("comp=block&"));
    assert.equal(blocks.length, 2);
    for (const block of blocks) assert.deepEqual(block.requestHeaders, {});
    const list = xhr.sent.find((r) => r.url.endsWith("comp=blocklist"));
    assert.equal(list.requestHeaders["If-None-Match"], "*");
    assert.equal(list.requestHeaders["x-ms-blob-content-md5"], createHash("md5").update("abcdef").digest("base64"));
    assert.equal(list.requestHeaders["Content-MD5"], undefined);
  });

  it("s3-multipart: a part gets its own headers when the ticket has them, never the whole file's MD5", async () => {
    const fetch = async (url, init) => {
      const { pathname } = new URL(url);
      if (pathname === `${base}/files`) return json(200, { files: [] });
      if (pathname === `${base}/uploads`)
        return json(201, {
          protocol: "s3-multipart",
          upload_id: "u",
          part_size: 4,
          headers: { "Content-MD5": "whole", "If-None-Match": "*", "x-amz-meta-a": "1" },
          parts: [
            { part_number: 1, url: "https://s3.test/k?partNumber=1", headers: { "Content-MD5": "part1" } },
            { part_number: 2, url: "https://s3.test/k?partNumber=2" },
          ],
        });
      if (pathname.endsWith("/complete")) return json(200, { path: "p", size: 6, etag: '"m"' });
      return json(200, { path: "p", size: 6, etag: "m", url: "u" });
    };
    const { XHR, sent } = fakeXhr();
    await client(fetch, XHR).upload(new File(["abcdef"], "a.jpg", { type: "image/jpeg" }), { path: "p.jpg" });
    const byPart = Object.fromEntries(sent.map((r) => [new URL(r.url).searchParams.get("partNumber"), r.requestHeaders]));
    assert.deepEqual(byPart, { 1: { "Content-MD5": "part1" }, 2: { "x-amz-meta-a": "1" } });
  });

  it("an old server (unknown_field) gets the request without the new fields, once, and not again", async () => {
    const api = fakeApi({
      refuse: (body) => ("name" in body || "content_md5" in body ? json(400, { error: { code: "unknown_field", message: "Unknown field(s): name." } }) : null),
    });
    const c = client(api.fetch, fakeXhr().XHR);
    const pick = (text) => new File([text], "image.jpg", { type: "image/jpeg" });
    const [a, b] = await Promise.all([c.upload(pick("a")), c.upload(pick("b"))]); // both refused, both resent
    const d = await c.upload(pick("d"));
    assert.equal(new Set([a.path, b.path, d.path]).size, 3);
    assert.equal(api.requests.length, 5);
    assert.deepEqual(Object.keys(api.requests[4]).sort(), ["content_type", "path", "size"]);
  });
});
