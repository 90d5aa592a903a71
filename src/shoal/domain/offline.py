"""Offline page: the default page the ingress serves with 503 while
``spec.maintenance.enabled`` (or ``archive``) is set (do-app-platform.md §4.10).

Role: build the page's HTML only. It must not decide when maintenance applies
(``shoal.domain.plan.offline`` does) or fetch a custom ``offline_page_url`` (the runtime does);
the ingress serves it.
"""

from __future__ import annotations

import html

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{name} is under maintenance</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; min-height: 100vh; display: grid;
       place-items: center; background: #f6f7f9; color: #1f2933; }}
main {{ max-width: 32rem; padding: 2rem; text-align: center; }}
h1 {{ font-size: 1.5rem; }}
</style>
</head>
<body>
<main>
<h1>This app is under maintenance</h1>
<p><strong>{name}</strong> is temporarily offline. Please try again later.</p>
</main>
</body>
</html>
"""


def offline_page(app_name: str) -> str:
    """The default offline page for ``app_name`` (escaped: names come from user specs)."""
    return _PAGE.format(name=html.escape(app_name or "This app"))
