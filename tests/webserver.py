"""A real HTTP server for the web-source tests and the fetch benchmark: 127.0.0.1, port 0, every request recorded.

    with WebServer() as server:
        server.page("/a.html", body, charset="gbk")
        server.add("/slow", Reply(body=b"late", delay=2))
        server.sequence("/flaky", [Reply(503, headers={"Retry-After": "1"}), Reply(body=b"ok")])
        ... server.url("/a.html"), server.hits("/a.html"), server.peak_in_flight

As a script (for the benchmark, in its own process): python tests/webserver.py --bench-pages 500
prints "READY <base_url>" and serves /bench/<n>.html (the fixture pages, each made unique) until killed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

PAGES = Path(__file__).resolve().parent / "pages"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    send_length: bool = True  # False: no Content-Length, the body ends when the connection closes


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names lower-case


Handler = Callable[[Request], Reply]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early (timeouts, size caps) are part of the tests


class WebServer:
    """Routes by exact path (query included), then by path alone; anything else is a 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- routes -------------------------------------------------------------------------------------
    def add(self, path: str, reply: Reply | Handler) -> None:
        self.routes[path] = reply if callable(reply) else (lambda _request, fixed=reply: fixed)

    def page(self, path: str, body: bytes, content_type: str = "text/html", charset: str | None = None) -> None:
        kind = f"{content_type}; charset={charset}" if charset else content_type
        self.add(path, Reply(body=body, headers={"Content-Type": kind}))

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.add(path, Reply(status, headers={"Location": to}))

    def sequence(self, path: str, replies: list[Reply]) -> None:
        """Successive requests get successive replies; the last one repeats."""
        queue = list(replies)

        def next_reply(_request: Request) -> Reply:
            with self._lock:
                return queue.pop(0) if len(queue) > 1 else queue[0]

        self.add(path, next_reply)

    def conditional(self, path: str, body: bytes, *, etag: str | None = None, last_modified: str | None = None) -> None:
        """200 with validators, or 304 when the request carries a matching one."""
        headers = {"Content-Type": "text/html; charset=utf-8"}
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified

        def answer(request: Request) -> Reply:
            if etag and request.headers.get("if-none-match") == etag:
                return Reply(304, headers={"ETag": etag})
            if last_modified and not etag and request.headers.get("if-modified-since") == last_modified:
                return Reply(304)
            return Reply(body=body, headers=headers)

        self.add(path, answer)

    # --- what happened ------------------------------------------------------------------------------
    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path or urlsplit(r.path).path == path]

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return self.base_url.replace("127.0.0.1", host) + path

    # --- life cycle ---------------------------------------------------------------------------------
    def start(self) -> WebServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                request = Request("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
                with owner._lock:
                    owner.requests.append(request)
                    owner.in_flight += 1
                    owner.peak_in_flight = max(owner.peak_in_flight, owner.in_flight)
                try:
                    route = owner.routes.get(self.path) or owner.routes.get(urlsplit(self.path).path)
                    reply = route(request) if route else Reply(404, b"not found", {"Content-Type": "text/plain"})
                    if reply.delay:
                        time.sleep(reply.delay)
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeouts, size caps): that is what some tests want
                finally:
                    with owner._lock:
                        owner.in_flight -= 1

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.send_length:
                    self.send_header("Content-Length", str(len(reply.body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if reply.status != 304:
                    self.wfile.write(reply.body)

            def log_message(self, *_args: object) -> None:
                pass

        server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def bench_pages(server: WebServer, count: int) -> None:
    """/bench/<n>.html for n < count: the fixture pages in turn, each with its own title and paragraph."""
    fixtures = [
        ("portal_gbk.html", "gbk", None),
        ("hk_big5.html", "big5", "big5"),
        ("wechat_utf8.html", "utf-8", "utf-8"),
        ("tw_table_utf8.html", "utf-8", "utf-8"),
    ]
    loaded = [(PAGES.joinpath(name).read_bytes(), codec, charset) for name, codec, charset in fixtures]

    def answer(request: Request) -> Reply:
        stem = urlsplit(request.path).path.rsplit("/", 1)[-1].removesuffix(".html")
        if not stem.isdigit() or int(stem) >= count:
            return Reply(404)
        body, codec, charset = loaded[int(stem) % len(loaded)]
        marker = f"<p>第{stem}号稿件。</p></body>".encode(codec, errors="xmlcharrefreplace")
        kind = f"text/html; charset={charset}" if charset else "text/html"
        return Reply(body=body.replace(b"</body>", marker), headers={"Content-Type": kind})

    for n in range(count):
        server.add(f"/bench/{n}.html", answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench-pages", type=int, default=500)
    args = parser.parse_args()
    server = WebServer().start()
    bench_pages(server, args.bench_pages)
    print(f"READY {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
