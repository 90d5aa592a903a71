"""Talking to the outside world about running apps: log destinations and alert receivers.

This package is the only one that opens connections to log services (Papertrail's syslog over TLS,
Datadog's, Logtail's and OpenSearch's HTTP intakes, generic HTTP endpoints), mail servers and Slack
webhooks. The engine reaches it through ``shoal.domain.ports`` (``LogForwarder``, ``Notifier``);
``bootstrap`` builds it from the operator's settings. It never reads the store.

    forwarder   one bounded queue and one sender task per destination; batches, back-off, drops
    outbox      the queue itself and the back-off schedule (no I/O)
    wire        each destination's record format (no I/O)
    senders     syslog-over-TLS and HTTP senders
    notify      SMTP and Slack delivery of alert messages
    tls         client TLS contexts trusting the operator's extra CAs
"""

from __future__ import annotations

from shoal.observability.forwarder import Forwarder
from shoal.observability.notify import Notifications, parse_smtp_url
from shoal.observability.senders import SenderFactory

__all__ = ["Forwarder", "Notifications", "SenderFactory", "parse_smtp_url"]
