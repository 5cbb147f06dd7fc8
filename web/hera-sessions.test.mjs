// Run with: node --test web/
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  HeraSessionsClient,
  HeraSessionsError,
  formatBytes,
  parseStorageError,
  partRange,
  planParts,
  safePath,
} from "./hera-sessions.js";

const VALID_PATH = /^(?:[A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]+$/;

describe("safePath", () => {
  const cases = [
    [["My Photo.PNG"], "photos/My_Photo.png"],
    [["IMG_0001.JPG", "photos/", "image/jpeg"], "photos/IMG_0001.jpg"],
    [["scan.jpeg", "photos/", "image/jpeg"], "photos/scan.jpeg"],
    [["scan", "photos/", "image/jpeg"], "photos/scan.jpg"],
    [["a.png", "photos/", "image/jpeg"], "photos/a.jpg"], // the type wins over a wrong extension
    [["holiday.v2", "photos/", "image/webp"], "photos/holiday.v2.webp"],
    [["IMG 7.HEIC", "photos/", "image/heic"], "photos/IMG_7.heic"],
    [["写真.png"], "photos/__.png"],
    [["😀.webp", ""], "_.webp"],
    [[".png"], "photos/file.png"],
    [[".."], "photos/file"],
    [["C:\\fakepath\\cat.png"], "photos/cat.png"],
    [["a.png", "../up//x y/"], "__/up/x_y/a.png"],
    [["user.png", "avatars"], "avatars/user.png"],
  ];
  for (const [args, expected] of cases) {
    it(`${JSON.stringify(args)} → ${expected}`, () => {
      const path = safePath(...args);
      assert.equal(path, expected);
      assert.match(path, VALID_PATH);
    });
  }

  it("takes the type from a File", () => {
    assert.equal(safePath({ name: "Selfie", type: "image/png" }), "photos/Selfie.png");
    assert.equal(safePath(new File(["x"], "Cat Pic.JPEG", { type: "image/jpeg" })), "photos/Cat_Pic.jpeg");
  });

  it("keeps paths within 256 bytes and keeps the extension", () => {
    const path = safePath(`${"é".repeat(300)}.png`, "photos/", "image/png");
    assert.equal(new TextEncoder().encode(path).length, 256);
    assert.ok(path.endsWith(".png"));
    assert.match(path, VALID_PATH);
  });

  it("refuses a folder that leaves no room for a name", () => {
    assert.throws(() => safePath("a.png", "x".repeat(300)), (err) => err instanceof HeraSessionsError && err.code === "invalid_path");
  });
});

describe("parseStorageError", () => {
  it("reads S3's XML error document", () => {
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>EntityTooLarge</Code>' +
      "<Message>Your proposed upload exceeds the maximum allowed size</Message>" +
      "<ProposedSize>12582912</ProposedSize><MaxSizeAllowed>10485760</MaxSizeAllowed>" +
      "<RequestId>4442587FB7D0A2F9</RequestId><HostId>abc</HostId></Error>";
    const { code, message, details } = parseStorageError(400, xml);
    assert.equal(code, "too_large");
    assert.equal(message, "Your proposed upload exceeds the maximum allowed size");
    assert.equal(details.source, "storage");
    assert.equal(details.storage_code, "EntityTooLarge");
    assert.equal(details.fields.MaxSizeAllowed, "10485760");
  });

  it("turns other codes into snake_case and decodes entities", () => {
    const xml = "<Error><Code>SignatureDoesNotMatch</Code><Message>a &amp; b &lt;c&gt; &#233;</Message></Error>";
    assert.deepEqual(
      [parseStorageError(403, xml).code, parseStorageError(403, xml).message],
      ["signature_does_not_match", "a & b <c> é"],
    );
  });

  it("spots an expired presigned URL", () => {
    const xml = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
    assert.equal(parseStorageError(403, xml).code, "upload_url_expired");
  });

  it("keeps the first line of Azure's messages", () => {
    const xml =
      '\ufeff<?xml version="1.0" encoding="utf-8"?><Error><Code>RequestBodyTooLarge</Code>' +
      "<Message>The request body is too large and exceeds the maximum permissible limit.\nRequestId:1\nTime:2</Message>" +
      "<MaxLimit>104857600</MaxLimit></Error>";
    const { code, message } = parseStorageError(413, xml);
    assert.equal(code, "too_large");
    assert.equal(message, "The request body is too large and exceeds the maximum permissible limit.");
  });

  it("reads a JSON error, and falls back on the status", () => {
    const json = JSON.stringify({ error: { code: "too_large", message: "Too big." } });
    assert.equal(parseStorageError(413, json).message, "Too big.");
    assert.equal(parseStorageError(413, "").code, "too_large");
    assert.equal(parseStorageError(502, "<html>Bad gateway</html>").code, "server_error");
  });
});

describe("part slicing", () => {
  it("cuts [(i-1)*part_size, min(i*part_size, size))", () => {
    assert.deepEqual(partRange(1, 5, 12), { start: 0, end: 5 });
    assert.deepEqual(partRange(2, 5, 12), { start: 5, end: 10 });
    assert.deepEqual(partRange(3, 5, 12), { start: 10, end: 12 });
  });

  it("covers the file exactly, without overlap", () => {
    const MiB = 1024 * 1024;
    for (const [size, partSize] of [[10, 5], [11, 5], [1, 5], [16 * MiB + 1, 5 * MiB], [0, 5]]) {
      const parts = planParts(size, partSize);
      assert.equal(parts.length, Math.max(1, Math.ceil(size / partSize)));
      let next = 0;
      parts.forEach((part, i) => {
        assert.equal(part.part_number, i + 1);
        assert.equal(part.start, next);
        assert.ok(part.end - part.start <= partSize);
        next = part.end;
      });
      assert.equal(next, size);
    }
  });

  it("refuses nonsense", () => {
    assert.throws(() => partRange(0, 5, 10), RangeError);
    assert.throws(() => partRange(1, 0, 10), RangeError);
  });
});

describe("formatBytes", () => {
  it("is human-readable", () => {
    assert.equal(formatBytes(512), "512 B");
    assert.equal(formatBytes(12_390), "12.1 KB");
    assert.equal(formatBytes(10 * 1024 * 1024), "10 MB");
    assert.equal(formatBytes(1.5 * 1024 ** 3), "1.5 GB");
  });
});

// ---------------------------------------------------------------------------------------------------------
// The client against a fake API (fetch) and fake storage (XMLHttpRequest).

const SESSION = "S".repeat(32);
const json = (status, body) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });

/** A fake storage: `handler(request)` answers each request with {status, body?, headers?} or "network". */
function fakeXhr(handler) {
  const sent = [];
  class FakeXMLHttpRequest {
    upload = {};
    status = 0;
    responseText = "";
    #headers = {};
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
        if (this.aborted) return;
        this.upload.onprogress?.({ loaded: body?.size ?? 0 });
        const answer = await handler(this);
        if (this.aborted) return;
        if (answer === "network") return this.onerror();
        this.status = answer.status;
        this.responseText = answer.body ?? "";
        this.#answer = Object.fromEntries(Object.entries(answer.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
        this.onload();
      }, 1);
    }
    abort() {
      this.aborted = true;
      this.onabort?.();
    }
  }
  return { XHR: FakeXMLHttpRequest, sent };
}

/** A fake API: `routes["METHOD /path"]` answers with a Response (or a function of the request). */
function fakeFetch(routes) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const { pathname } = new URL(url, "http://api.test");
    const body = init.body ? JSON.parse(init.body) : undefined;
    calls.push({ method: init.method, path: pathname, body, headers: init.headers });
    const route = routes[`${init.method} ${pathname}`];
    if (!route) return json(404, { error: { code: "not_found", message: `No route ${init.method} ${pathname}` } });
    return typeof route === "function" ? route({ body, calls }) : route.clone();
  };
  return { fetch, calls };
}

function client(fetch, XHR, extra = {}) {
  return new HeraSessionsClient({
    baseUrl: "http://api.test",
    sessionId: SESSION,
    token: "tok",
    fetch,
    XMLHttpRequest: XHR,
    retryDelay: 1,
    ...extra,
  });
}

const base = `/v1/sessions/${SESSION}`;

describe("HeraSessionsClient", () => {
  it("retries a single PUT after a network failure and a 503, but not after a refusal", async () => {
    const file = new File(["abc"], "me.png", { type: "image/png" });
    const ticket = { protocol: "put", method: "PUT", url: "https://bucket.test/k", headers: { "Content-Type": "image/png" }, fields: {}, key: "k", upload_id: null };
    const record = { path: "photos/me.png", size: 3, content_type: "image/png", etag: "e", uploaded_at: "t", url: "https://dl", expires_at: "x" };
    const routes = { [`POST ${base}/uploads`]: json(201, ticket), [`GET ${base}/files/photos/me.png`]: json(200, record) };
    const answers = ["network", { status: 503, body: "<Error><Code>SlowDown</Code><Message>Slow down.</Message></Error>" }, { status: 200, headers: { ETag: '"e"' } }];
    const flaky = fakeXhr(async () => answers.shift());
    const done = await client(fakeFetch(routes).fetch, flaky.XHR).upload(file, { path: "photos/me.png" });
    assert.equal(done.recorded, true);
    assert.equal(flaky.sent.length, 3);

    const refusing = fakeXhr(async () => ({ status: 403, body: "<Error><Code>SignatureDoesNotMatch</Code><Message>No.</Message></Error>" }));
    await assert.rejects(client(fakeFetch(routes).fetch, refusing.XHR).upload(file, { path: "photos/me.png" }));
    assert.equal(refusing.sent.length, 1);
  });

  it("uploads with s3-multipart: parallel parts, retry, ETags, complete, then waits for the record", async () => {
    const file = new File(["0123456789"], "ten.png", { type: "image/png" });
    let lookups = 0;
    let failedOnce = false;
    const { fetch, calls } = fakeFetch({
      [`POST ${base}/uploads`]: json(201, {
        protocol: "s3-multipart",
        method: "PUT",
        url: "",
        headers: {},
        fields: {},
        key: "k",
        upload_id: "up1",
        part_size: 4,
        parts: [3, 1, 2].map((n) => ({ part_number: n, url: `https://bucket.test/k?partNumber=${n}` })),
      }),
      [`POST ${base}/uploads/up1/complete`]: ({ body }) =>
        json(200, { path: "photos/ten.png", size: 10, content_type: "image/png", etag: '"m-3"', uploaded_at: null, parts: body.parts }),
      [`GET ${base}/files/photos/ten.png`]: () =>
        ++lookups < 2
          ? json(404, { error: { code: "not_found", message: "No such file." } })
          : json(200, { path: "photos/ten.png", size: 10, content_type: "image/png", etag: "m-3", uploaded_at: "t", url: "https://dl", expires_at: "x" }),
    });
    const { XHR, sent } = fakeXhr(async (req) => {
      const n = new URL(req.url).searchParams.get("partNumber");
      if (n === "2" && !failedOnce) {
        failedOnce = true;
        return { status: 503, body: "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>" };
      }
      return { status: 200, headers: { ETag: `"etag-${n}"` } };
    });
    const progress = [];
    const record = await client(fetch, XHR).upload(file, { path: "photos/ten.png", onProgress: (p) => progress.push(p) });

    assert.equal(record.recorded, true);
    assert.equal(record.url, "https://dl");
    const bodies = await Promise.all(sent.map(async (req) => [new URL(req.url).searchParams.get("partNumber"), await req.body.text()]));
    assert.deepEqual(Object.fromEntries(bodies), { 1: "0123", 2: "4567", 3: "89" });
    assert.equal(sent.length, 4); // part 2 twice
    const complete = calls.find((c) => c.path.endsWith("/complete"));
    assert.deepEqual(complete.body.parts, [
      { part_number: 1, etag: '"etag-1"' },
      { part_number: 2, etag: '"etag-2"' },
      { part_number: 3, etag: '"etag-3"' },
    ]);
    assert.equal(complete.headers.Authorization, "Bearer tok");
    assert.deepEqual(progress.at(-1), { loaded: 10, total: 10 });
    assert.ok(progress.every((p) => p.loaded <= 10 && p.total === 10));
  });

  it("aborts a multipart upload: rejects with code aborted and DELETEs the upload", async () => {
    const file = new Blob(["x".repeat(20)], { type: "image/png" });
    const { fetch, calls } = fakeFetch({
      [`POST ${base}/uploads`]: json(201, {
        protocol: "s3-multipart",
        upload_id: "up2",
        part_size: 5,
        parts: [1, 2, 3, 4].map((n) => ({ part_number: n, url: `https://bucket.test/k?partNumber=${n}` })),
      }),
      [`DELETE ${base}/uploads/up2`]: new Response(null, { status: 204 }),
    });
    const controller = new AbortController();
    const { XHR } = fakeXhr(() => new Promise(() => controller.abort())); // storage never answers
    await assert.rejects(
      client(fetch, XHR).upload(file, { path: "photos/a.png", signal: controller.signal }),
      (err) => err instanceof HeraSessionsError && err.code === "aborted",
    );
    assert.ok(calls.some((c) => c.method === "DELETE" && c.path === `${base}/uploads/up2`));
  });

  it("a missing ETag (CORS) fails the multipart upload clearly", async () => {
    const { fetch, calls } = fakeFetch({
      [`POST ${base}/uploads`]: json(201, {
        protocol: "s3-multipart",
        upload_id: "up3",
        part_size: 5,
        parts: [{ part_number: 1, url: "https://bucket.test/k?partNumber=1" }],
      }),
      [`DELETE ${base}/uploads/up3`]: new Response(null, { status: 204 }),
    });
    const { XHR } = fakeXhr(() => ({ status: 200 }));
    await assert.rejects(client(fetch, XHR).upload(new Blob(["abc"]), { path: "a.png" }), { code: "etag_missing" });
    assert.ok(calls.some((c) => c.method === "DELETE"));
  });

  it("gcs-resumable: opens the session with the ticket's headers, then PUTs the file to Location", async () => {
    const file = new File(["0123456789"], "ten.png", { type: "image/png" });
    const { fetch } = fakeFetch({
      [`POST ${base}/uploads`]: json(201, {
        protocol: "gcs-resumable",
        method: "POST",
        url: "https://storage.test/b/k?X-Goog-Signature=s",
        headers: { "Content-Type": "image/png", "x-goog-resumable": "start", "x-goog-content-length-range": "0,10" },
      }),
      [`GET ${base}/files/photos/ten.png`]: json(200, { path: "photos/ten.png", size: 10, etag: "e1", url: "https://dl" }),
    });
    let starts = 0;
    const { XHR, sent } = fakeXhr((req) => {
      if (req.method === "POST") {
        starts += 1;
        if (starts === 1) return { status: 503, body: "<Error><Code>ServiceUnavailable</Code><Message>Try again.</Message></Error>" };
        return { status: 201, headers: { Location: "https://storage.test/b/k?upload_id=u1" } };
      }
      return { status: 200, headers: { ETag: '"e1"' } };
    });
    const record = await client(fetch, XHR).upload(file, { path: "photos/ten.png" });

    assert.equal(record.recorded, true);
    assert.deepEqual(
      sent.map((req) => [req.method, req.url]),
      [
        ["POST", "https://storage.test/b/k?X-Goog-Signature=s"],
        ["POST", "https://storage.test/b/k?X-Goog-Signature=s"],
        ["PUT", "https://storage.test/b/k?upload_id=u1"],
      ],
    );
    assert.equal(sent[0].requestHeaders["x-goog-resumable"], "start");
    assert.equal(sent[0].body, null);
    assert.deepEqual(sent[2].requestHeaders, {});
    assert.equal(await sent[2].body.text(), "0123456789");
  });

  it("gcs-resumable: a Location that CORS hides fails clearly", async () => {
    const { fetch } = fakeFetch({
      [`POST ${base}/uploads`]: json(201, { protocol: "gcs-resumable", method: "POST", url: "https://storage.test/b/k" }),
    });
    const { XHR } = fakeXhr(() => ({ status: 201 }));
    await assert.rejects(client(fetch, XHR).upload(new Blob(["abc"]), { path: "a.png" }), { code: "location_missing" });
  });

  it("put: sends exactly the ticket's headers; storage XML errors become codes", async () => {
    const { fetch } = fakeFetch({
      [`POST ${base}/uploads`]: json(201, {
        protocol: "put",
        method: "PUT",
        url: "https://bucket.test/k?sig=1",
        headers: { "Content-Type": "image/png" },
      }),
    });
    const { XHR, sent } = fakeXhr(() => ({
      status: 400,
      body: "<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size</Message></Error>",
    }));
    await assert.rejects(client(fetch, XHR).upload(new Blob(["abc"], { type: "image/png" }), { path: "a.png" }), (err) => {
      assert.equal(err.code, "too_large");
      assert.equal(err.status, 400);
      assert.equal(err.details.storage_code, "EntityTooLarge");
      return true;
    });
    assert.deepEqual(sent[0].requestHeaders, { "Content-Type": "image/png" });
    assert.equal(sent[0].method, "PUT");
  });

  it("post: fields first in order, the file last as `file`; unrecorded files resolve with recorded: false", async () => {
    const { fetch, calls } = fakeFetch({
      [`POST ${base}/uploads`]: json(201, {
        protocol: "post",
        method: "POST",
        url: "https://bucket.test/",
        headers: {},
        fields: { key: "sessions/x/photos/a.png", "Content-Type": "image/png", policy: "p", "x-amz-signature": "s" },
      }),
    });
    const { XHR, sent } = fakeXhr(() => ({ status: 204, headers: { ETag: '"e1"' } }));
    const record = await client(fetch, XHR, { recordTimeout: 50 }).upload(new Blob(["abc"], { type: "image/png" }), {
      path: "photos/a.png",
      method: "POST",
    });
    assert.deepEqual(
      [...sent[0].body.keys()],
      ["key", "Content-Type", "policy", "x-amz-signature", "file"],
    );
    assert.equal(sent[0].body.get("file").name, "a.png");
    assert.deepEqual(calls[0].body, {
      path: "photos/a.png",
      content_type: "image/png",
      size: 3,
      method: "POST",
      content_md5: "kAFQmDzST7DWlj99KOF/cg==", // MD5("abc")
    });
    assert.equal(record.recorded, false);
    assert.equal(record.etag, '"e1"');
    assert.equal(record.path, "photos/a.png");
  });

  it("azure-blocks: Put Block per block, then Put Block List", async () => {
    const { fetch } = fakeFetch({
      [`POST ${base}/uploads`]: json(201, {
        protocol: "azure-blocks",
        method: "PUT",
        url: "https://acct.blob.test/c/k?sv=1&sig=2",
        headers: { "x-ms-blob-type": "BlockBlob", "Content-Type": "image/png", "x-ms-version": "2023-11-03" },
        block_size: 4,
      }),
      [`GET ${base}/files/a.png`]: json(200, { path: "a.png", size: 6, content_type: "image/png", etag: "0x1", url: "u" }),
    });
    const { XHR, sent } = fakeXhr(() => ({ status: 201, headers: { ETag: '"0x1"' } }));
    const record = await client(fetch, XHR).upload(new Blob(["abcdef"], { type: "image/png" }), { path: "a.png" });
    assert.equal(record.recorded, true);
    const blocks = sent.filter((r) => r.url.includes("comp=block&"));
    assert.equal(blocks.length, 2);
    const ids = blocks.map((r) => decodeURIComponent(new URL(r.url).searchParams.get("blockid")));
    assert.equal(new Set(ids.map((id) => id.length)).size, 1);
    assert.ok(!("Content-Type" in blocks[0].requestHeaders));
    const list = sent.find((r) => r.url.endsWith("comp=blocklist"));
    assert.equal(
      list.body,
      `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join("")}</BlockList>`,
    );
    assert.equal(list.requestHeaders["x-ms-blob-content-type"], "image/png");
    assert.equal(list.requestHeaders["x-ms-version"], "2023-11-03");
  });

  it("API errors carry the API's code, message and status", async () => {
    const { fetch } = fakeFetch({
      [`POST ${base}/uploads`]: json(415, {
        error: { code: "content_type_not_allowed", message: "Files of type image/gif are not accepted." },
      }),
    });
    await assert.rejects(client(fetch, fakeXhr(() => ({ status: 200 })).XHR).upload(new Blob(["a"], { type: "image/gif" }), { path: "x.gif" }), {
      name: "HeraSessionsError",
      code: "content_type_not_allowed",
      status: 415,
      message: "Files of type image/gif are not accepted.",
    });
  });

  it("createSession, listFiles, meta and erase talk to the right URLs", async () => {
    const { fetch, calls } = fakeFetch({
      "POST /v1/sessions": json(201, { session_id: SESSION, token: "tok", expires_at: "t" }),
      [`GET ${base}/files`]: json(200, { files: [{ path: "a.png", size: 1 }] }),
      [`PUT ${base}/meta/profile`]: ({ body }) => json(200, body),
      [`DELETE ${base}`]: new Response(null, { status: 204 }),
    });
    const session = await HeraSessionsClient.createSession({ baseUrl: "http://api.test/", fetch, serviceKey: "svc" });
    assert.equal(session.token, "tok");
    assert.equal(calls[0].headers.Authorization, "Bearer svc");
    const c = client(fetch, undefined);
    assert.deepEqual(await c.listFiles(), [{ path: "a.png", size: 1 }]);
    assert.deepEqual(await c.putMeta("profile", { name: "Ann" }), { name: "Ann" });
    assert.equal(await c.erase(), undefined);
    assert.equal(calls.at(-1).method, "DELETE");
  });
});
