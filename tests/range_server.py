"""A static HTTP server on 127.0.0.1 that honours single byte ranges and logs every request.

What object stores do for COG readers (HEAD, `Range: bytes=a-b` -> 206), with a log of
(method, path, first byte, last byte, bytes sent) so tests can tell which tiles were fetched.
Paths listed in `deny` answer 403 with the body Azure Blob Storage sends for an expired SAS token.
"""

from __future__ import annotations

import http.server
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Request:
    method: str
    path: str
    start: int | None
    end: int | None  # inclusive
    status: int
    sent: int


@dataclass
class Log:
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def for_path(self, suffix: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith(suffix)]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


class RangeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.log = Log()
        self.deny: set[str] = set()  # request paths (without the query) that answer 403
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RangeServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _file(self) -> Path | None:
        rel = self.path.split("?", 1)[0].lstrip("/")
        path = (self.server.root / rel).resolve()
        if self.server.root not in path.parents or not path.is_file():
            return None
        return path

    def _record(self, status: int, start: int | None, end: int | None, sent: int) -> None:
        with self.server.log.lock:
            self.server.log.requests.append(Request(self.command, self.path, start, end, status, sent))

    def _denied(self) -> bool:
        if self.path.split("?", 1)[0] not in self.server.deny:
            return False
        body = (b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server '
                b'failed to authenticate the request.</Message><AuthenticationErrorDetail>Signature not valid in the '
                b'specified time frame</AuthenticationErrorDetail></Error>')
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/xml")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._record(403, None, None, len(body))
        return True

    def do_HEAD(self) -> None:
        if self._denied():
            return
        path = self._file()
        if path is None:
            self._not_found()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._record(200, None, None, 0)

    def do_GET(self) -> None:
        if self._denied():
            return
        path = self._file()
        if path is None:
            self._not_found()
            return
        size = path.stat().st_size
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        if m:
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self._record(416, start, None, 0)
                return
            with path.open("rb") as f:
                f.seek(start)
                data = f.read(end - start + 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            start, end = 0, size - 1
            data = path.read_bytes()
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "image/tiff")
        self.end_headers()
        self.wfile.write(data)
        self._record(206 if m else 200, start, end, len(data))

    def _not_found(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self._record(404, None, None, 0)
