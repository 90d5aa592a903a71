"""Alert delivery against a real SMTP server (aiosmtpd) and a Slack-webhook-shaped HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from shoal.core.errors import BadRequest
from shoal.domain.ports import DeliveryFailed
from shoal.observability import Notifications, parse_smtp_url
from shoal.observability.tls import ClientContexts
from tests.receivers import HttpReceiver, ReceiverCa, SmtpReceiver, free_port


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ReceiverCa:
    return ReceiverCa(tmp_path_factory.mktemp("ca"))


def _run(notifications: Notifications, call: Awaitable[None]) -> None:
    async def main() -> None:
        try:
            await call
        finally:
            await notifications.close()

    asyncio.run(main())


def test_smtp_urls_name_host_port_tls_login_and_sender() -> None:
    plain = parse_smtp_url("smtp://127.0.0.1:2525?from=alerts@example.com")
    assert (plain.host, plain.port, plain.implicit_tls, plain.sender, plain.user) == (
        "127.0.0.1", 2525, False, "alerts@example.com", "")
    secure = parse_smtp_url("smtps://ops%40example.com:p%40ss@mail.example.com")
    assert (secure.port, secure.implicit_tls, secure.user, secure.password) == (465, True, "ops@example.com", "p@ss")
    assert "p@ss" not in repr(secure)
    for bad in ("http://mail:25", "smtp://", "smtp://mail:notaport"):
        with pytest.raises(BadRequest, match="--smtp-url"):
            parse_smtp_url(bad)


def test_an_email_arrives_with_its_subject_and_text(ca: ReceiverCa) -> None:
    server = SmtpReceiver().start()
    try:
        notifications = Notifications(parse_smtp_url(f"smtp://127.0.0.1:{server.port}?from=shoal@example.com"),
                                      ClientContexts(ca.ca_path))
        _run(notifications, notifications.email("ops@example.com", "[shoal] Deployment failed: shop", "It failed\n"))
        ((sender, recipients, content),) = server.messages
        assert sender == "shoal@example.com" and recipients == ["ops@example.com"]
        assert "Subject: [shoal] Deployment failed: shop" in content and "It failed" in content
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtps_logs_in_over_tls_trusting_the_operators_ca(ca: ReceiverCa) -> None:
    server = SmtpReceiver(tls=ca.server_context(), login=("ops", "secret")).start()
    try:
        notifications = Notifications(parse_smtp_url(f"smtps://ops:secret@127.0.0.1:{server.port}"),
                                      ClientContexts(ca.ca_path))
        _run(notifications, notifications.email("ops@example.com", "subject", "text\n"))
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_a_recipient_the_server_refuses_for_good_is_not_retried(ca: ReceiverCa) -> None:
    server = SmtpReceiver().start()
    try:
        notifications = Notifications(parse_smtp_url(f"smtp://127.0.0.1:{server.port}"), ClientContexts(ca.ca_path))
        with pytest.raises(DeliveryFailed, match="nobody@example.com") as refused:
            _run(notifications, notifications.email("nobody@example.com", "subject", "text\n"))
        assert refused.value.permanent and server.messages == []
    finally:
        server.stop()


def test_a_mail_server_that_is_down_is_worth_retrying(ca: ReceiverCa) -> None:
    notifications = Notifications(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"), ClientContexts(ca.ca_path))
    with pytest.raises(DeliveryFailed, match="cannot send mail") as failed:
        _run(notifications, notifications.email("ops@example.com", "subject", "text\n"))
    assert not failed.value.permanent


def test_without_an_smtp_server_email_is_undeliverable(ca: ReceiverCa) -> None:
    notifications = Notifications(None, ClientContexts(ca.ca_path))
    assert not notifications.mail_configured
    with pytest.raises(DeliveryFailed, match="--smtp-url") as failed:
        _run(notifications, notifications.email("ops@example.com", "subject", "text\n"))
    assert failed.value.permanent


def test_slack_gets_text_and_channel_and_its_answers_decide_retrying(ca: ReceiverCa) -> None:
    answers = iter([(200, b"ok"), (500, b"oops"), (404, b"no_service")])
    hook = HttpReceiver(ca.server_context(), respond=lambda request: next(answers)).start()
    try:
        notifications = Notifications(None, ClientContexts(ca.ca_path))

        async def calls() -> None:
            await notifications.slack(f"{hook.url}/services/T/B/x", "#ops", "*[shoal] Deployment failed*")
            with pytest.raises(DeliveryFailed, match="500") as busy:
                await notifications.slack(f"{hook.url}/services/T/B/x", "", "again")
            assert not busy.value.permanent
            with pytest.raises(DeliveryFailed, match="no_service") as gone:
                await notifications.slack(f"{hook.url}/services/T/B/x", "", "again")
            assert gone.value.permanent

        _run(notifications, calls())
        first = hook.received()[0]
        assert first.path == "/services/T/B/x" and first.headers["content-type"] == "application/json"
        assert first.json() == {"text": "*[shoal] Deployment failed*", "channel": "#ops"}
        assert hook.received()[1].json() == {"text": "again"}
    finally:
        hook.stop()
