"""Headless Chromium (Debian's package) driven by Playwright; the demo page served by real local servers.

One browser for the test session, a new context (cookies, sessionStorage, cache) for each test. A failed test
leaves a screenshot and the page's console under ``test-output/browser/``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import mimetypes
import os
import re
import shutil
import struct
import threading
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, Playwright, expect, sync_playwright

from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.local.server import LocalServer
from tests.aws.conftest import (  # noqa: F401 - fixtures, found by name: a bucket and queue on moto, S3 mode
    s3_bucket,
    s3_client,
    s3_env,
    s3_queue,
    s3_runtime,
    sqs_client,
    storage_events,
)
from tests.azure.conftest import (  # noqa: F401 - fixtures, found by name: Azurite, a container, Azure mode
    azure_container,
    azure_env,
    azure_runtime,
    azurite,
    function_app,
    function_app_module,
)
from tests.conftest import ROOT, SERVICE_KEY, MotoServer, free_port
from tests.envs import service_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
OUTPUT = ROOT / "test-output" / "browser"
#: How long the page may take to show an outcome (uploads poll for their record up to ~5 s).
WAIT_MS = 15_000


# -- reports for the screenshot on failure ---------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _artifact_name(item: pytest.Item) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", item.name).strip("_")


# -- the browser ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Chromium is not installed: `make test` installs Debian's chromium (scripts/install-debian-packages.sh)"
        )
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1024, "height": 900})
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page whose console is kept; on failure, a screenshot and the console go to test-output/browser/."""
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.on("requestfailed", lambda req: console.append(f"requestfailed: {req.method} {req.url} {req.failure}"))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        name = _artifact_name(request.node)
        try:
            page.screenshot(path=OUTPUT / f"{name}.png", full_page=True)
        finally:
            (OUTPUT / f"{name}.console.txt").write_text("\n".join(console) + "\n")


# -- moto, with S3's CORS on form POST answers -------------------------------------------------------------

#: moto applies a bucket's CORS rules to preflights and to object GET/PUT answers, but not to the answer of a
#: form POST to the bucket, which real S3 gives the same CORS headers. Without them a browser cannot read the
#: answer of its POST upload. This moto adds them, with moto's own rule matching (the function it uses for PUT).
MOTO_WITH_POST_CORS = """
import sys
from moto.s3.responses import S3Response

_post = S3Response._bucket_response_post

def _bucket_response_post(self, request, bucket_name):
    status, headers, body = _post(self, request, bucket_name)
    return status, {**self._get_cors_headers_other(), **headers}, body

S3Response._bucket_response_post = _bucket_response_post

from moto.server import main
main(sys.argv[1:])
"""


class BrowserMotoServer(MotoServer):
    """moto in server mode (``MOTO_DISABLE_GLOBAL_CORS=true``: only the bucket's rules answer CORS), with the
    form POST answer carrying the bucket's CORS headers as S3's does."""

    def __init__(self, logs: Path | None = None) -> None:  # the root fixture's server, started through the shim
        super().__init__(logs, code=MOTO_WITH_POST_CORS)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """For the browser tests, moto with S3's CORS on form POST answers (see MOTO_WITH_POST_CORS)."""
    with BrowserMotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


# -- photos -----------------------------------------------------------------------------------------------


def _png(width: int, height: int, rows: bytes, level: int = 6) -> bytes:
    """A valid 8-bit RGB PNG from its filtered rows (each row: filter byte 0, then 3 bytes a pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, level)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """A PNG painted pixel by pixel (made with zlib and struct: no imaging library needed)."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    return _png(width, height, rows)


def noise_png(width: int, height: int) -> bytes:
    """A PNG of random pixels, stored uncompressed: its size follows its pixels (3 bytes each), quickly."""
    return _png(width, height, b"".join(b"\x00" + os.urandom(3 * width) for _ in range(height)), level=0)


#: GPS values written by :func:`exif_app1`; their bytes must not reach storage.
GPS_LATITUDE = ((51, 1), (30, 1), (2653, 100))
GPS_LONGITUDE = ((7, 1), (5, 1), (4711, 100))
GPS_IFD_POINTER = 0x8825
ORIENTATION = 0x0112


def exif_app1(orientation: int, *, gps: bool = True, order: str = ">") -> bytes:
    """A JPEG APP1 ``Exif\\0\\0`` segment: IFD0 {Make, Orientation, GPS pointer}, a GPS IFD (51°30'26.53"N
    7°5'47.11"E) and no IFD1; ``order`` is struct's byte order (``>`` Motorola, ``<`` Intel)."""

    def entry(tag: int, kind: int, count: int, value: bytes) -> bytes:
        return struct.pack(f"{order}HHI", tag, kind, count) + value.ljust(4, b"\0")

    def long(n: int) -> bytes:
        return struct.pack(f"{order}I", n)

    ifd0 = [entry(0x010F, 2, 4, b"Cam\0"), entry(ORIENTATION, 3, 1, struct.pack(f"{order}H", orientation))]
    gps_at = 8 + 2 + 12 * (len(ifd0) + (1 if gps else 0)) + 4
    if gps:
        ifd0.append(entry(GPS_IFD_POINTER, 4, 1, long(gps_at)))
    data_at = gps_at + 2 + 12 * 4 + 4
    rationals = b"".join(struct.pack(f"{order}II", n, d) for n, d in GPS_LATITUDE + GPS_LONGITUDE)
    gps_ifd = [
        entry(0x0001, 2, 2, b"N\0"),
        entry(0x0002, 5, 3, long(data_at)),
        entry(0x0003, 2, 2, b"E\0"),
        entry(0x0004, 5, 3, long(data_at + 24)),
    ]
    tiff = (b"MM" if order == ">" else b"II") + struct.pack(f"{order}HI", 42, 8)
    tiff += struct.pack(f"{order}H", len(ifd0)) + b"".join(ifd0) + long(0)
    if gps:
        tiff += struct.pack(f"{order}H", len(gps_ifd)) + b"".join(gps_ifd) + long(0) + rationals
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def with_segment(jpeg: bytes, segment: bytes) -> bytes:
    """``jpeg`` with ``segment`` inserted right after SOI."""
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + segment + jpeg[2:]


def read_exif(jpeg: bytes) -> dict[str, Any]:
    """IFD0 of a JPEG's first EXIF segment: {tag: inline value} and the segment's offset and length."""
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF and jpeg[at + 1] not in (0xDA, 0xD9):
        length = struct.unpack(">H", jpeg[at + 2 : at + 4])[0]
        body = jpeg[at + 4 : at + 2 + length]
        if jpeg[at + 1] == 0xE1 and body.startswith(b"Exif\0\0"):
            tiff = body[6:]
            order = ">" if tiff[:2] == b"MM" else "<"
            (ifd,) = struct.unpack(f"{order}I", tiff[4:8])
            (count,) = struct.unpack(f"{order}H", tiff[ifd : ifd + 2])
            tags: dict[int, int] = {}
            for i in range(count):
                tag, kind, _ = struct.unpack(f"{order}HHI", tiff[ifd + 2 + 12 * i : ifd + 10 + 12 * i])
                raw = tiff[ifd + 10 + 12 * i : ifd + 14 + 12 * i]
                tags[tag] = struct.unpack(f"{order}H", raw[:2])[0] if kind == 3 else struct.unpack(f"{order}I", raw)[0]
            return {"tags": tags, "start": at, "end": at + 2 + length}
        at += 2 + length
    return {"tags": {}, "start": None, "end": None}


def gps_bytes(order: str = ">") -> list[bytes]:
    """The GPS rationals as written: none may be found in a stored photo."""
    return [struct.pack(f"{order}II", n, d) for n, d in (GPS_LATITUDE[2], GPS_LONGITUDE[2])]


@dataclass(frozen=True)
class Photo:
    name: str  # the browser takes the type from the extension, as from a real file
    data: bytes
    width: int

    @property
    def mime_type(self) -> str:
        return mimetypes.guess_type(self.name.lower())[0] or "application/octet-stream"

    def save(self, folder: Path) -> Path:
        """The photo as a file on disk, as a person picks it (the browser reads it itself: fast for big files)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.name
        path.write_bytes(self.data)
        return path


@pytest.fixture(scope="session")
def photos(browser: Browser) -> list[Photo]:
    """A PNG made here and a JPEG drawn and encoded by the browser's own canvas (no imaging library needed)."""
    sunrise = png(48, 32, lambda x, y: (255, 120 + 4 * y, 4 * x))
    page = browser.new_page()
    try:
        encoded = page.evaluate(
            """() => {
                const canvas = Object.assign(document.createElement("canvas"), {width: 64, height: 40});
                const g = canvas.getContext("2d");
                g.fillStyle = "#1f6feb"; g.fillRect(0, 0, 64, 40);
                g.fillStyle = "#f0c000"; g.beginPath(); g.arc(44, 14, 9, 0, 7); g.fill();
                return canvas.toDataURL("image/jpeg", 0.9).split(",")[1];
            }"""
        )
    finally:
        page.close()
    harbour = base64.b64decode(encoded)
    assert harbour[:3] == b"\xff\xd8\xff"
    return [Photo("Sunrise.png", sunrise, 48), Photo("Harbour Walk.JPG", harbour, 64)]


# -- sites: the local server serving the page (and, in local mode, the API and the object endpoints) ------


@dataclass
class Site:
    server: LocalServer
    env: dict[str, str]
    host: str
    port: int
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def runtime(self) -> Runtime:
        return self.server.runtime

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.stop()
            if self.server.runtime._service is not None:
                self.server.runtime._service.metadata.close()


@pytest.fixture
def start_site(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """Start a local server: ``start_site(env, host="localhost")``; it learns its own port (signed URLs point at
    it) and its own origin is allowed by CORS unless ``CORS_ALLOWED_ORIGINS`` is given."""
    sites: list[Site] = []

    def start(env: dict[str, str] | None = None, host: str = "127.0.0.1") -> Site:
        port = free_port()
        origin = f"http://{host}:{port}"
        settings = service_env(
            sessions_dir=tmp_path / f"site-{port}",
            origins=[origin],
            token_secret=None,
            service_keys=None,
            HOST=host,
            PORT=str(port),
        ) | (env or {})
        server = LocalServer(Runtime(settings), host="127.0.0.1", port=port).start()
        site = Site(server, settings, host, port)
        sites.append(site)
        return site

    yield start
    for site in sites:
        site.stop()


# -- the demo page, as a person uses it -------------------------------------------------------------------


#: The page scales a photo down to its tile (the shorter side the tile's width in device pixels, 160 at least).
THUMBNAIL_MIN = 160


class DemoPage:
    """The demo page's controls by their test ids and roles."""

    def __init__(self, page: Page, api: str, folder: Path) -> None:
        self.page = page
        self.api = api.rstrip("/")
        self.folder = folder

    def open(self, url: str) -> DemoPage:
        self.page.goto(url)
        expect(self.page.get_by_test_id("session-id")).not_to_have_text("starting…", timeout=WAIT_MS)
        return self

    def pick(self, *files: Photo) -> None:
        self.page.get_by_label("Choose photos").set_input_files([f.save(self.folder) for f in files])

    def pick_payloads(self, *files: Photo) -> None:
        """Pick files as in-memory payloads: several may share a name (as two folders' ``image.jpg`` do)."""
        payloads: list[FilePayload] = [{"name": f.name, "mimeType": f.mime_type, "buffer": f.data} for f in files]
        self.page.get_by_label("Choose photos").set_input_files(payloads)

    def wait_for_uploads(self, count: int) -> list[tuple[str, str]]:
        """Wait until ``count`` uploads are over; their (picked name, status)."""
        rows = self.page.get_by_test_id("upload-row")
        expect(rows).to_have_count(count, timeout=WAIT_MS)
        expect(self.page.locator("[data-testid=upload-row][data-status=uploading]")).to_have_count(0, timeout=WAIT_MS)
        statuses = rows.evaluate_all("rows => rows.map(r => [r.dataset.name, r.dataset.status])")
        return sorted((name, status) for name, status in statuses)

    def paths(self) -> dict[str, str]:
        """picked name → the path the client chose for it (names must be distinct; see :meth:`uploaded`)."""
        pairs = self.uploaded()
        assert len({name for name, _ in pairs}) == len(pairs), pairs
        return dict(pairs)

    def uploaded(self) -> list[tuple[str, str]]:
        """(picked name, path) of every finished upload."""
        rows = self.page.locator("[data-testid=upload-row][data-status=done]")
        pairs = rows.evaluate_all("rows => rows.map(r => [r.dataset.name, r.dataset.path])")
        return sorted((name, path) for name, path in pairs)

    def tiles(self) -> list[tuple[str, str]]:
        """(shown name, details line) of every gallery tile."""
        items = self.page.get_by_test_id("gallery-item")
        pairs = items.evaluate_all(
            """items => items.map(i => [i.querySelector('[data-testid=photo-name]').textContent,
                                        i.querySelector('[data-testid=photo-details]').textContent])"""
        )
        return sorted((name, line) for name, line in pairs)

    def thumbnails(self) -> dict[str, int]:
        """shown name → the natural width of its thumbnail, once every thumbnail has finished loading (0 = broken)."""
        items = self.page.get_by_test_id("gallery-item")
        for i in range(items.count()):
            items.nth(i).scroll_into_view_if_needed()  # thumbnails load lazily, as on a phone
        self.page.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid=gallery-item] img')]
                    .every(img => img.complete && img.getAttribute('src'))""",
            timeout=WAIT_MS,
        )
        pairs = items.evaluate_all("items => items.map(i => [i.dataset.name, i.querySelector('img').naturalWidth])")
        return dict(pairs)

    def check_thumbnails(self, picked: Sequence[Photo]) -> dict[str, str]:
        """Every tile's thumbnail loaded and is no bigger than it needs to be: a photo narrower than a tile as it is,
        a bigger one scaled down in the browser (an object URL). → shown name → its source's scheme."""
        widths = self.thumbnails()
        schemes: dict[str, str] = dict(
            self.page.get_by_test_id("gallery-item").evaluate_all(
                "items => items.map(i => [i.dataset.name, i.querySelector('img').src.split(':')[0]])"
            )
        )
        for photo in picked:
            if photo.width <= THUMBNAIL_MIN:
                assert widths[photo.name] == photo.width, (photo.name, widths)
            else:
                assert 0 < widths[photo.name] < photo.width, (photo.name, widths)
                assert schemes[photo.name] == "blob", (photo.name, schemes)
        return schemes

    def session(self) -> dict[str, str]:
        """The session the page uses (kept in sessionStorage)."""
        stored = self.page.evaluate(
            """() => Object.keys(sessionStorage)
                    .filter(k => k.startsWith('hera-sessions:session:'))
                    .map(k => JSON.parse(sessionStorage.getItem(k)))"""
        )
        assert len(stored) == 1, stored
        session: dict[str, str] = stored[0]
        return session

    def listing(self, session: dict[str, str] | None = None) -> requests.Response:
        session = session or self.session()
        return requests.get(
            f"{self.api}/v1/sessions/{session['session_id']}/files",
            headers={"Authorization": f"Bearer {session['token']}"},
            timeout=5,
        )

    def files(self) -> list[tuple[str, int, str]]:
        return sorted((f["path"], f["size"], f["content_type"]) for f in self.records())

    def records(self) -> list[dict[str, Any]]:
        answer = self.listing()
        assert answer.status_code == 200, answer.text
        records: list[dict[str, Any]] = answer.json()["files"]
        return records

    def stored(self, path: str) -> bytes:
        """The stored object's bytes, read through the file's signed download URL."""
        session = self.session()
        info = requests.get(
            f"{self.api}/v1/sessions/{session['session_id']}/files/{path}",
            headers={"Authorization": f"Bearer {session['token']}"},
            timeout=5,
        )
        assert info.status_code == 200, info.text
        body = requests.get(info.json()["url"], timeout=5)
        assert body.status_code == 200, body.text
        return body.content


@pytest.fixture
def demo(page: Page, tmp_path: Path) -> Callable[[str], DemoPage]:
    """``demo(api_url)``: the page object, for a page whose API is at ``api_url``."""
    return lambda api: DemoPage(page, api, tmp_path / "picked")


# -- pages whose session comes from the app's backend (cloud modes) ------------------------------------------


def new_session(site: Site) -> dict[str, str]:
    """What the app's backend does with its service key (in cloud modes the page cannot create sessions)."""
    answer = requests.post(f"{site.url}/v1/sessions", headers={"Authorization": f"Bearer {SERVICE_KEY}"}, timeout=5)
    assert answer.status_code == 201, answer.text
    session: dict[str, str] = answer.json()
    return session


def hand_over(context: BrowserContext, session: dict[str, str], base_url: str = "") -> None:
    """The app's backend hands the page its session (and where the API is) in ``window.HERA_CONFIG``."""
    config = {"session": session, "baseUrl": base_url}
    context.add_init_script(f"window.HERA_CONFIG = {json.dumps(config)};")


@pytest.fixture
def big_photo() -> Photo:
    """About 11 MiB: above the 5 MiB multipart threshold, two parts of 8 MiB at most."""
    return Photo("Panorama.png", noise_png(2000, 1900), 2000)


#: What :func:`put_from` sends (ASCII: as many bytes as characters).
PUT_BODY = "hera-sessions direct PUT"


def put_from(page: Page, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """A presigned PUT of PUT_BODY sent by the page itself (fetch): its status and readable ETag, or the browser's
    refusal."""
    result: dict[str, Any] = page.evaluate(
        """async ([url, headers, body]) => {
            try {
                const answer = await fetch(url, {method: "PUT", headers, body});
                return {status: answer.status, etag: answer.headers.get("ETag")};
            } catch (error) {
                return {blocked: `${error.name}: ${error.message}`};
            }
        }""",
        [url, headers, PUT_BODY],
    )
    return result


# -- the direct-to-storage tests (S3, Azure) ---------------------------------------------------------------
@pytest.fixture
def site_port() -> int:
    """Where the page (and the API) are served: its origin is the one allowed origin."""
    return free_port()


@pytest.fixture
def allowed_origins(site_port: int) -> tuple[str, ...]:
    """Only the page's own origin: the API's CORS_ALLOWED_ORIGINS and the storage's CORS rules."""
    return (f"http://127.0.0.1:{site_port}",)


@contextlib.contextmanager
def polling(step: Callable[[list[str]], None], name: str) -> Iterator[list[str]]:
    """Run ``step(problems)`` every 0.1 s on a thread (a stand-in for the cloud's event delivery) until the block
    ends; what goes wrong lands in ``problems``, for the test to report, never lost in the thread."""
    stop = threading.Event()
    problems: list[str] = []

    def run() -> None:
        while not stop.is_set():
            try:
                step(problems)
            except Exception as exc:
                problems.append(repr(exc))
            stop.wait(0.1)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield problems
    finally:
        stop.set()
        thread.join(10)


def serve_site(runtime: Runtime, port: int) -> Iterator[Site]:
    """The local server for a direct-to-storage test: the page and the API at the one allowed origin."""
    server = LocalServer(runtime, host="127.0.0.1", port=port).start()
    yield Site(server, {}, "127.0.0.1", port)
    server.stop()
