"""Real receivers on loopback for the things shoal sends out: a TLS syslog server (Papertrail), HTTP(S)
servers that record what they are sent (Datadog, Logtail, OpenSearch, Slack, generic endpoints) and
an SMTP server (aiosmtpd). Each runs in threads of the test process, can be stopped and started
again on the same port (a destination that is down for a while), and is signed by a test CA of its
own that shoal is told to trust (``--log-forward-ca``)."""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ReceiverCa:
    """A CA for the receivers, and one server certificate for 127.0.0.1 and localhost."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receivers test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
              .not_valid_after(now + timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        import ipaddress

        leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_path = directory / "receivers-ca.pem"
        self.cert_path = directory / "receiver.pem"
        self.key_path = directory / "receiver-key.pem"
        self.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        self.key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))


def wait_until(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s (last value: {value!r})")
        time.sleep(interval)


class _Restartable:
    """A socketserver on a fixed port that can be stopped (closing its connections) and started again."""

    def __init__(self, port: int | None) -> None:
        self.port = port or free_port()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def _make(self) -> socketserver.ThreadingTCPServer:
        raise NotImplementedError

    def start(self) -> Any:
        server = self._make()
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._connections.clear()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            (self._connections.add if alive else self._connections.discard)(conn)


class _TlsServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True

    def __init__(self, port: int, handler: type[socketserver.BaseRequestHandler], context: ssl.SSLContext | None,
                 owner: _Restartable) -> None:
        self.owner = owner
        self.tls = context
        super().__init__(("127.0.0.1", port), handler)

    def get_request(self) -> tuple[Any, Any]:
        conn, address = super().get_request()
        if self.tls is not None:
            conn.settimeout(10)
            conn = self.tls.wrap_socket(conn, server_side=True)  # a failed handshake is handle_error's
            conn.settimeout(None)
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that went away, or did not trust us: the test looks at what arrived


class SyslogReceiver(_Restartable):
    """Papertrail's side: TLS, newline-framed RFC 5424 lines."""

    def __init__(self, context: ssl.SSLContext, port: int | None = None) -> None:
        super().__init__(port)
        self.context = context
        self.lines: list[str] = []

    def _make(self) -> socketserver.ThreadingTCPServer:
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                owner._track(self.connection, True)
                try:
                    for raw in self.rfile:
                        with owner._lock:
                            owner.lines.append(raw.decode().rstrip("\n"))
                except (OSError, ValueError):
                    pass
                finally:
                    owner._track(self.connection, False)

        return _TlsServer(self.port, Handler, self.context, self)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[Request], tuple[int, bytes]]


def ok(request: Request) -> tuple[int, bytes]:
    return 202, b"{}"


def bulk_ok(request: Request) -> tuple[int, bytes]:
    """What OpenSearch answers a ``_bulk`` request whose every item was indexed."""
    actions = [json.loads(line) for line in request.body.decode().splitlines()[::2]]
    items = [{"index": {"_index": a["index"]["_index"], "status": 201}} for a in actions]
    return 200, json.dumps({"took": 1, "errors": False, "items": items}).encode()


class HttpReceiver(_Restartable):
    """Records every request (a gzip body decompressed) and answers with ``respond``."""

    def __init__(self, context: ssl.SSLContext | None = None, respond: Responder = ok, port: int | None = None) -> None:
        super().__init__(port)
        self.context = context
        self.respond = respond
        self.requests: list[Request] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}"

    def _make(self) -> socketserver.ThreadingTCPServer:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                owner._track(self.connection, True)

            def finish(self) -> None:
                owner._track(self.connection, False)
                super().finish()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                status, answer = owner.respond(request)
                with owner._lock:
                    owner.requests.append(request)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        return _TlsServer(self.port, Handler, self.context, self)

    def received(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def messages(self, key: str = "message") -> list[str]:
        """Every record's ``key`` across the JSON-array requests received so far."""
        return [str(entry.get(key)) for request in self.received() for entry in request.json()]

    def bulk_documents(self) -> list[dict[str, Any]]:
        docs = []
        for request in self.received():
            lines = request.body.decode().splitlines()
            docs += [json.loads(doc) for doc in lines[1::2]]
        return docs


class SmtpReceiver:
    """An SMTP server (aiosmtpd) that keeps every message; ``tls`` makes it implicit-TLS (smtps) with a
    login required."""

    def __init__(self, tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[tuple[str, list[str], str]] = []
        owner = self

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                                  options: list[str]) -> str:
                if address.startswith("nobody@"):
                    return "550 5.1.1 no such mailbox"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                owner.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                       envelope.content.decode(errors="replace")))
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            good = isinstance(data, LoginPassword) and login is not None and \
                (data.login.decode(), data.password.decode()) == login
            return AuthResult(success=good)

        self.port = free_port()
        options: dict[str, Any] = {}
        if login is not None:
            options.update(authenticator=authenticate, auth_required=True, auth_require_tls=False)
        # aiosmtpd does not count implicit TLS (smtps) as TLS for AUTH, hence auth_require_tls=False
        # and its warning about it, which tests logging in filter.
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, ssl_context=tls, **options)

    def start(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
