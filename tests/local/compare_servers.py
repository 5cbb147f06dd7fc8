"""Compare WSGI servers on what the local server must survive (run by hand: ``python -m tests.local.compare_servers``).

Each server runs a tiny WSGI app (it answers 200 with the length of the body it was given, and appends that
length to a file) as a subprocess on a free loopback port, with a 2 s idle timeout where the server has one.
Bounded: a few seconds per probe, about a minute in all.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.servers import ServerProcess, free_port

APP = """
import os
def app(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n) if n else b""
    with open(os.environ["SEEN"], "a") as f:
        f.write(f"{environ['REQUEST_METHOD']} {len(body)}\\n")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(str(len(body)))))])
    return [str(len(body)).encode()]
"""

SERVERS = {
    "waitress": ["-m", "waitress", "--port={port}", "--host=127.0.0.1", "--channel-timeout=2", "--cleanup-interval=1"],
    "gunicorn sync": ["-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "--timeout", "2"],
    "gunicorn gthread": [
        "-m",
        "gunicorn",
        "-b",
        "127.0.0.1:{port}",
        "-k",
        "gthread",
        "--threads",
        "8",
        "--keep-alive",
        "2",
    ],
    "uvicorn (wsgi)": ["-m", "uvicorn", "--interface", "wsgi", "--port", "{port}", "--timeout-keep-alive", "2"],
}


def exchange(port: int, raw: bytes, half_close: bool = False, wait: float = 4.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def statuses(answer: bytes) -> str:
    codes = [line.split()[1].decode() for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.")]
    return "+".join(codes) or "closed"


def probe(name: str, args: list[str], workdir: Path) -> dict[str, str]:
    port = free_port()
    seen = workdir / f"{name.replace(' ', '_')}.seen"
    seen.write_text("")
    env = {**os.environ, "SEEN": str(seen), "PYTHONPATH": str(workdir)}
    cmd = [sys.executable, *[a.format(port=port) for a in args], "app:app"]
    server = ServerProcess(cmd, port=port, name=seen.stem, env=env, cwd=workdir, logs=workdir, timeout=15).start()
    result: dict[str, str] = {}
    try:
        time.sleep(0.5)
        listing = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout.split()
        result["backlog"] = listing[2] if len(listing) > 2 else "?"
        before = seen.read_text()
        short = exchange(port, b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789", half_close=True)
        result["short body, half-closed"] = f"{statuses(short)}, app saw {seen.read_text()[len(before) :].split()}"
        hidden = b"GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n"
        chunked = (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n"
            + b"Connection: close\r\n\r\n"
            + f"{len(hidden):x}\r\n".encode()
            + hidden
            + b"\r\n0\r\n\r\n"
        )
        result["TE chunked + CL"] = statuses(exchange(port, chunked))
        dup = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 34\r\n\r\n" + hidden
        result["two Content-Lengths"] = statuses(exchange(port, dup))
        result["Content-Length: ²"] = statuses(
            exchange(port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ²\r\n\r\n".encode())
        )
        result["TRACE reaches the app"] = statuses(
            exchange(port, b"TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        )
        stalled = []
        for _ in range(30):
            sock = socket.create_connection(("127.0.0.1", port), timeout=8)
            sock.sendall(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            stalled.append(sock)
        started = time.monotonic()
        ok = statuses(exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", wait=6))
        result["request beside 30 stalled"] = f"{ok} after {time.monotonic() - started:.1f}s"
        started = time.monotonic()
        closed = 0
        deadline = started + 10
        for sock in stalled:
            try:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                sock.recv(1024)  # an answer (408) or the end of the connection: the server let go
                closed += 1
            except TimeoutError:
                pass  # still held open after 10 s
            except ConnectionResetError:
                closed += 1
            finally:
                sock.close()
        result["stalled closed by the server"] = f"{closed}/30 within 10 s"
        burst = []
        for _ in range(200):
            burst.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        answered = 0
        for sock in burst:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for sock in burst:
            try:
                answered += sock.recv(1024).startswith(b"HTTP/1.1 200")
            except OSError:
                pass
            sock.close()
        result["200 connections at once"] = f"{answered}/200 answered"
    finally:
        server.stop(10)
    return result


def main() -> None:
    workdir = Path(tempfile.mkdtemp())
    (workdir / "app.py").write_text(APP)
    try:
        for name, args in SERVERS.items():
            print(f"## {name}")
            for probe_name, outcome in probe(name, args, workdir).items():
                print(f"- {probe_name}: {outcome}")
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
