"""Web pages over HTTPS on loopback, with a certificate from a shoal local CA: a stand-in for the
custom offline pages (``maintenance.offline_page_url``) that apps host elsewhere."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shoal.local_ca import issue_certificate


@dataclass(frozen=True)
class Pages:
    port: int
    ca: Path  # what a client must trust (SSL_CERT_FILE) to fetch them

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"


@contextmanager
def serve_pages(tls_dir: Path, pages: dict[str, tuple[int, bytes]]) -> Iterator[Pages]:
    """Serve ``pages`` (path → (status, HTML)) until the block ends; other paths answer 404."""
    cert, key = issue_certificate(tls_dir, ["127.0.0.1", "localhost"], name="pages")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = pages.get(self.path, (404, b"<h1>not here</h1>"))
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Pages(port=int(server.server_address[1]), ca=tls_dir / "ca.pem")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
