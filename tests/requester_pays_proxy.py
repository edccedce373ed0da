"""A real HTTP proxy in front of an S3 server (moto) that enforces requester pays, as AWS does.

moto serves requester-pays buckets to anyone. AWS answers a request on a requester-pays bucket that lacks
the `x-amz-request-payer: requester` header with 403 AccessDenied; this proxy does the same for the
buckets it is given and forwards every other request unchanged (method, path, headers, body, and the
answer's status, headers and body), so a client's signature and ranges reach moto as they were sent.
Each request is logged as (method, path, had the header, status).
"""

from __future__ import annotations

import http.client
import http.server
import threading
from dataclasses import dataclass, field

ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied'
                 b'</Message><RequestId>0000000000000000</RequestId></Error>')


def relay(handler: http.server.BaseHTTPRequestHandler, resp: http.client.HTTPResponse, data: bytes) -> None:
    """Send the upstream answer `resp` (its body read into `data`) back through `handler`, as a proxy does:
    hop-by-hop headers dropped, the length set again (a HEAD answer has no body but tells the object's)."""
    handler.send_response(resp.status)
    for k, v in resp.getheaders():
        if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
            handler.send_header(k, v)
    handler.send_header("Content-Length", resp.getheader("Content-Length", "0") if handler.command == "HEAD"
                        else str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)


@dataclass
class Seen:
    method: str
    path: str
    requester_pays: bool
    status: int
    user_agent: str = ""


@dataclass
class ProxyLog:
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)


class RequesterPaysProxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, buckets: set[str]) -> None:
        self.upstream = upstream.removeprefix("http://").rstrip("/")
        self.buckets = buckets
        self.log = ProxyLog()
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RequesterPaysProxy

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _handle(self) -> None:
        body = b""
        if length := int(self.headers.get("Content-Length", 0) or 0):
            body = self.rfile.read(length)
        bucket = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        paid = self.headers.get("x-amz-request-payer", "").lower() == "requester"
        if bucket in self.server.buckets and not paid:
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(ACCESS_DENIED)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(ACCESS_DENIED)
            self._record(paid, 403)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "transfer-encoding")}
        conn = http.client.HTTPConnection(self.server.upstream, timeout=30)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        relay(self, resp, data)
        self._record(paid, resp.status)

    def _record(self, paid: bool, status: int) -> None:
        with self.server.log.lock:
            self.server.log.seen.append(Seen(self.command, self.path, paid, status, self.headers.get("User-Agent", "")))

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle
