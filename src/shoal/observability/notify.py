"""Alert delivery: email through the operator's SMTP server, Slack through incoming webhooks.

``--smtp-url smtp://host:port`` submits in the clear, upgrading with STARTTLS when the server
offers it; ``smtps://user:pass@host:port`` speaks TLS from the first byte and logs in. A ``from``
query parameter sets the sender (default ``shoal@<this host>``). Certificates are checked against
the system's CAs and ``--log-forward-ca``. Slack gets ``{"text", "channel"}`` (§5.2).
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from shoal.core.errors import BadRequest
from shoal.domain.ports import DeliveryFailed
from shoal.observability.tls import ClientContexts

TIMEOUT = 15.0


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    sender: str
    user: str = ""
    password: str = field(default="", repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise BadRequest(f"--smtp-url {url!r} must look like smtp://host:port or smtps://user:password@host:port")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError as exc:
        raise BadRequest(f"--smtp-url {url!r} has a bad port") from exc
    sender = (parse_qs(parts.query).get("from") or [f"shoal@{socket.getfqdn()}"])[0]
    return SmtpServer(host=parts.hostname, port=port, implicit_tls=parts.scheme == "smtps", sender=sender,
                      user=unquote(parts.username or ""), password=unquote(parts.password or ""))


class Notifications:
    """The ``Notifier`` port: one method per kind of destination, each raising ``DeliveryFailed``."""

    def __init__(self, smtp: SmtpServer | None, contexts: ClientContexts) -> None:
        self._smtp = smtp
        self._contexts = contexts
        self._http = httpx.AsyncClient(verify=contexts.get(), timeout=TIMEOUT,
                                       headers={"user-agent": "shoal-alerts/1"})

    @property
    def mail_configured(self) -> bool:
        return self._smtp is not None

    async def email(self, to: str, subject: str, text: str) -> None:
        if self._smtp is None:
            raise DeliveryFailed("no SMTP server is configured (shoal serve --smtp-url)", permanent=True)
        await asyncio.to_thread(self._submit, self._smtp, to, subject, text)

    def _submit(self, server: SmtpServer, to: str, subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = server.sender, to, subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=server.sender.rpartition("@")[2] or None)
        message.set_content(text)
        context = self._contexts.get()
        try:
            with _connect(server, context) as smtp:
                if server.user:
                    smtp.login(server.user, server.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryFailed(f"the mail server refused {to}: {exc.recipients}",
                                 permanent=all(c >= 500 for c in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise DeliveryFailed(f"the mail server answered {exc.smtp_code} {detail}",
                                 permanent=exc.smtp_code >= 500) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailed(f"the mail server's certificate is not trusted ({exc.verify_message})") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"cannot send mail through {server.host}:{server.port}: "
                                 f"{exc or type(exc).__name__}") from exc

    async def slack(self, url: str, channel: str, text: str) -> None:
        payload = {"text": text, **({"channel": channel} if channel else {})}
        host = urlsplit(url).netloc.rpartition("@")[2]
        try:
            response = await self._http.post(url, json=payload)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"cannot reach the Slack webhook at {host}: {exc or type(exc).__name__}") from exc
        status = response.status_code
        if status < 300:
            return
        # Slack's own codes: 404 no_service, 403 invalid_token, 410 channel_is_archived ... are for good.
        raise DeliveryFailed(f"the Slack webhook at {host} answered {status} {response.text[:200]}",
                             permanent=400 <= status < 500 and status not in (408, 429))

    async def close(self) -> None:
        await self._http.aclose()


def _connect(server: SmtpServer, context: ssl.SSLContext) -> smtplib.SMTP:
    if server.implicit_tls:
        return smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT, context=context)
    smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
    try:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
    except BaseException:
        smtp.close()
        raise
    return smtp
