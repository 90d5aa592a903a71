"""Fetching a custom offline page (``maintenance.offline_page_url``) from a real HTTPS server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.runtime.local.offline import MAX_BYTES, PageUnavailable, fetch_page, page_for
from tests.pages import Pages, serve_pages
from tests.runtime.aio import run_async

CUSTOM = "<html><body><h1>Back soon — gone fishing</h1></body></html>"


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    with serve_pages(tmp_path_factory.mktemp("tls"), {
        "/down.html": (200, CUSTOM.encode()),
        "/huge.html": (200, b"x" * (MAX_BYTES + 1)),
        "/broken.html": (500, b"oops"),
    }) as served:
        yield served


@pytest.fixture
def trusted(pages: Pages, monkeypatch: pytest.MonkeyPatch) -> Pages:
    """The fetch trusts the environment's CA file, as the server does when started with SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pages.ca))
    return pages


@run_async
async def test_fetches_the_page(trusted: Pages) -> None:
    assert await fetch_page(trusted.url("/down.html")) == CUSTOM


@pytest.mark.parametrize(("path", "why"), [("/missing.html", "it answered HTTP 404"),
                                           ("/broken.html", "it answered HTTP 500"),
                                           ("/huge.html", "it is larger than 1024 KiB")])
@run_async
async def test_refuses_what_is_not_a_page(trusted: Pages, path: str, why: str) -> None:
    with pytest.raises(PageUnavailable, match=why):
        await fetch_page(trusted.url(path))


@run_async
async def test_an_untrusted_certificate_is_refused(pages: Pages, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))  # an empty trust store
    with pytest.raises(PageUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        await fetch_page(pages.url("/down.html"))


@run_async
async def test_nothing_listening_is_refused(trusted: Pages) -> None:
    with pytest.raises(PageUnavailable):
        await fetch_page("https://127.0.0.1:1/down.html", timeout=2)


@run_async
async def test_falls_back_to_the_default_page_and_says_why(trusted: Pages) -> None:
    lines: list[tuple[str, str, str]] = []
    page = await page_for("shop", trusted.url("/missing.html"), lambda *line: lines.append(line))
    assert "This app is under maintenance" in page and "shop" in page
    why = (f"could not fetch the offline page {trusted.url('/missing.html')}: it answered HTTP 404; "
           "serving the default offline page instead")
    assert lines == [("DEPLOY", "deploy", why)]
    lines.clear()
    assert await page_for("shop", trusted.url("/down.html"), lambda *line: lines.append(line)) == CUSTOM
    assert lines[0][2].startswith("serving the offline page fetched from")
    assert "under maintenance" in await page_for("shop", None, lambda *line: lines.append(line))
