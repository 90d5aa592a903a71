"""What a normalised spec costs per month, for propose's ``app_cost``.

Billing rules (reference §4.4, §4.6, §7.1):

- services and workers: instance price × ``instance_count``; with autoscaling, the price of
  ``min_instance_count`` instances — the floor the app is always billed for.
- jobs: billed per second only while they run, which a spec cannot predict, so they add nothing
  to the monthly figure (a PRE/POST_DEPLOY job runs for seconds per deployment).
- static sites: ``STATIC_SITE_USD_PER_MONTH`` each; the free allowance for static-only apps
  depends on the account and is the API's business, not the spec's.
- dev databases (no ``cluster_name``): ``DEV_DATABASE_USD_PER_MONTH`` each; attached clusters are
  billed by the database product. Functions are usage-billed and add nothing.
- a dedicated egress IP: ``DEDICATED_EGRESS_IP_USD_PER_MONTH``.
"""

from __future__ import annotations

from typing import Any

from shoal.spec import catalog


def app_cost(spec: dict[str, Any]) -> float:
    total = 0.0
    for kind in ("services", "workers"):
        for component in spec.get(kind) or []:
            total += _instance_price(component) * _billed_instances(component)
    total += catalog.STATIC_SITE_USD_PER_MONTH * len(spec.get("static_sites") or [])
    for database in spec.get("databases") or []:
        if not database.get("cluster_name"):
            total += catalog.DEV_DATABASE_USD_PER_MONTH
    if (spec.get("egress") or {}).get("type") == "DEDICATED_IP":
        total += catalog.DEDICATED_EGRESS_IP_USD_PER_MONTH
    return round(total, 2)


def _instance_price(component: dict[str, Any]) -> float:
    size = catalog.INSTANCE_SIZES_BY_SLUG.get(component.get("instance_size_slug") or catalog.DEFAULT_INSTANCE_SIZE)
    return float(size.usd_per_month) if size is not None else 0.0


def _billed_instances(component: dict[str, Any]) -> int:
    autoscaling = component.get("autoscaling")
    if autoscaling:
        return int(autoscaling.get("min_instance_count") or 1)
    return int(component.get("instance_count") or 1)
