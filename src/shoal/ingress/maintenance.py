"""Maintenance: the default offline page the ingress serves with 503 while ``spec.maintenance.enabled``
is set. The page is built in ``shoal.domain.offline`` so the runtime (which publishes routes and may
not import the ingress) can build it too; this module keeps the ingress's name for it.
"""

from __future__ import annotations

from shoal.domain.offline import offline_page

__all__ = ["offline_page"]
