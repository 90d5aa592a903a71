"""The offline page the local runtime publishes while an app is offline (maintenance or archived).

Role: fetch ``spec.maintenance.offline_page_url`` once, when a deployment goes live, and fall back
to shoal's default page (``shoal.domain.offline``) when the spec has no URL or the fetch fails,
saying why in the deployment's log. It must not decide *whether* the app is offline
(``shoal.domain.plan.offline`` does) nor serve anything (the ingress does).

The fetch is bounded: a short timeout, at most 1 MiB of body, a few redirects. It trusts the
environment (``SSL_CERT_FILE``, proxies) like any HTTP client on the host, so an operator's own CA
works. The page is published as it is: shoal serves the user's own HTML for the user's own app,
as DigitalOcean does.
"""

from __future__ import annotations

import asyncio

import httpx

from shoal.domain.offline import offline_page
from shoal.domain.plan import AppPlan
from shoal.domain.ports import LogSink

MAX_BYTES = 1 << 20
TIMEOUT_SECONDS = 5.0
MAX_REDIRECTS = 3


class PageUnavailable(Exception):
    """The offline page could not be fetched; the message says why, for the deployment log."""


async def fetch_page(url: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """The HTML at ``url``; raises ``PageUnavailable`` on any failure (network, TLS, status, size, time)."""
    try:
        async with asyncio.timeout(timeout * 2):  # a whole-fetch deadline: a slow drip must not hold a deployment
            body, encoding = await _download(url, timeout)
    except TimeoutError as exc:
        raise PageUnavailable(f"it did not arrive within {timeout * 2:g} s") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise PageUnavailable(str(exc) or type(exc).__name__) from exc
    try:
        return body.decode(encoding, errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


async def _download(url: str, timeout: float) -> tuple[bytes, str]:
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS,
                                 trust_env=True) as client, client.stream("GET", url) as response:
        if response.status_code != 200:
            raise PageUnavailable(f"it answered HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BYTES:
                raise PageUnavailable(f"it is larger than {MAX_BYTES // 1024} KiB")
        return bytes(body), response.charset_encoding or "utf-8"


async def custom_page(url: str, what: str, log: LogSink) -> str | None:
    """The page at ``url``, or None (said in the log) when it cannot be fetched."""
    try:
        page = await fetch_page(url)
    except PageUnavailable as failure:
        log("DEPLOY", "deploy", f"could not fetch the {what} {url}: {failure}; serving the default {what} instead")
        return None
    log("DEPLOY", "deploy", f"serving the {what} fetched from {url} ({len(page.encode())} bytes)")
    return page


async def page_for(app_name: str, url: str | None, log: LogSink) -> str:
    """The offline page to publish: the one at ``url`` if it can be fetched, else the default one."""
    found = await custom_page(url, "offline page", log) if url else None
    return found if found is not None else offline_page(app_name)


async def pages(plan: AppPlan, log: LogSink) -> tuple[str | None, str | None]:
    """The offline page (only while the app is offline) and the app's custom error page, fetched now."""
    offline = await page_for(plan.app_name, plan.maintenance.offline_page_url, log) if plan.offline else None
    error_page = await custom_page(plan.error_page_url, "error page", log) if plan.error_page_url else None
    return offline, error_page
