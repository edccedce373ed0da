"""A CDSE-like download server on 127.0.0.1: OData `Products(<id>)/$value` behind a bearer token.

What the Copernicus Data Space Ecosystem does for a whole-product download, as far as a client sees it:
the zip is served at `/odata/v1/Products(<uuid>)/$value` only with `Authorization: Bearer <token>` (401
without), byte ranges are honoured (206), and the identity server's token endpoint exchanges a username
and password (OAuth password grant, client `cdse-public`) for an access token. Here, in addition, the
first GET of each product is cut after `cut_at` bytes (the connection dropped mid-body), so that a
client has to resume. `/catalogue/...` answers 302 to the same path without that prefix (CDSE's catalogue
redirects downloads too). Every request is logged (method, path, Range header, status, bytes sent).
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class Req:
    method: str
    path: str
    range: str | None
    status: int
    sent: int
    authorised: bool


@dataclass
class CdseServer:
    products: dict[str, bytes]  # uuid -> zip bytes
    token: str = "test-access-token-5b1e"
    users: dict[str, str] = field(default_factory=dict)  # username -> password, for the token endpoint
    cut_at: float = 0.5  # the first GETs of a product stop after this share of the bytes asked for
    cuts: int = 1  # how many GETs of each product are cut
    log: list[Req] = field(default_factory=list)
    token_forms: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._cut_count: dict[str, int] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _rec(self, status: int, sent: int, authorised: bool) -> None:
                with outer.lock:
                    outer.log.append(Req(self.command, self.path, self.headers.get("Range"), status, sent, authorised))

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0)).decode()
                form = dict(urllib.parse.parse_qsl(body))
                with outer.lock:
                    outer.token_forms.append(form)
                ok = (self.path.endswith("/protocol/openid-connect/token") and form.get("grant_type") == "password"
                      and form.get("client_id") == "cdse-public" and outer.users.get(form.get("username", "")) == form.get("password"))
                if ok:
                    self._send(200, json.dumps({"access_token": outer.token, "expires_in": 600, "token_type": "Bearer"}).encode())
                else:
                    self._send(401, b'{"error":"invalid_grant","error_description":"Invalid user credentials"}')
                self._rec(200 if ok else 401, 0, ok)

            def do_GET(self) -> None:
                if self.path.startswith("/catalogue/"):  # the catalogue redirects downloads, as CDSE's does
                    self.send_response(302)
                    self.send_header("Location", self.path.removeprefix("/catalogue"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self._rec(302, 0, self.headers.get("Authorization", "") == f"Bearer {outer.token}")
                    return
                m = re.fullmatch(r"/odata/v1/Products\(([0-9a-f-]+)\)/\$value", self.path.split("?", 1)[0])
                authorised = self.headers.get("Authorization", "") == f"Bearer {outer.token}"
                if m is None or m.group(1) not in outer.products:
                    self._send(404, b'{"detail":"Not found"}')
                    self._rec(404, 0, authorised)
                    return
                if not authorised:
                    self._send(401, b'{"detail":"Unauthorized"}')
                    self._rec(401, 0, authorised)
                    return
                uuid, data = m.group(1), outer.products[m.group(1)]
                size = len(data)
                rng = re.fullmatch(r"bytes=(\d+)-(\d*)", (self.headers.get("Range") or "").strip())
                start, end = (int(rng.group(1)), int(rng.group(2)) if rng and rng.group(2) else size - 1) if rng else (0, size - 1)
                self.send_response(206 if rng else 200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(end - start + 1))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                with outer.lock:
                    cut = outer._cut_count.get(uuid, 0) < outer.cuts
                    outer._cut_count[uuid] = outer._cut_count.get(uuid, 0) + 1
                if cut:  # the connection drops midway through the transfer
                    n = int((end - start + 1) * outer.cut_at)
                    self.wfile.write(data[start:start + n])
                    self.wfile.flush()
                    self._rec(206 if rng else 200, n, authorised)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                # recorded before the body: a client that has every byte may read the log at once
                self._rec(206 if rng else 200, end - start + 1, authorised)
                self.wfile.write(data[start:end + 1])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def downloads(self) -> list[Req]:
        with self.lock:
            return [r for r in self.log if r.method == "GET" and "/$value" in r.path and r.status != 302]

    def redirects(self) -> list[Req]:
        with self.lock:
            return [r for r in self.log if r.status == 302]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
