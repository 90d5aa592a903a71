from __future__ import annotations

from shoal.domain.offline import offline_page


def test_offline_page_names_the_app() -> None:
    page = offline_page("sample-app")
    assert page.startswith("<!doctype html>")
    assert "This app is under maintenance" in page
    assert "<title>sample-app is under maintenance</title>" in page


def test_offline_page_escapes_the_name() -> None:
    page = offline_page('<script>alert("x")</script>')
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_offline_page_without_a_name() -> None:
    assert "<strong>This app</strong>" in offline_page("")
