"""Client TLS contexts for destinations: the system's CAs plus the operator's (``--log-forward-ca``)."""

from __future__ import annotations

import ssl
from pathlib import Path


class ClientContexts:
    """Two contexts made once and shared: verifying (system CAs and the extra file), and the one a
    destination with ``tls_insecure`` asked for, which checks nothing."""

    def __init__(self, extra_ca: Path | None = None) -> None:
        self._extra_ca = extra_ca
        self._verifying: ssl.SSLContext | None = None
        self._insecure: ssl.SSLContext | None = None

    def get(self, insecure: bool = False) -> ssl.SSLContext:
        if insecure:
            if self._insecure is None:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                self._insecure = context
            return self._insecure
        if self._verifying is None:
            context = ssl.create_default_context()
            if self._extra_ca is not None:
                context.load_verify_locations(cafile=str(self._extra_ca))
            self._verifying = context
        return self._verifying
