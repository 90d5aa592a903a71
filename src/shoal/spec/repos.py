"""Clone URLs: which ones git may be given, and which name a path on this machine (pure).

git reads an argument that starts with ``-`` as an option (``--upload-pack=...`` runs a
command), and its ``transport::address`` form runs a helper program (``ext::sh -c ...``), so
neither is a repository. Network URLs are https, http, ssh and git (and scp-like
``user@host:path``); anything else — an absolute path or a ``file://`` URL — is a local source,
which only the operator may allow (``shoal.runtime.local.sources.LocalSources``).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

NETWORK_SCHEMES = frozenset({"https", "http", "ssh", "git", "git+ssh", "ssh+git"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HELPER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")
_SCP = re.compile(r"^[^/:]+:")  # git's rule: a colon before any slash means host:path


def clone_url_problem(url: str) -> str | None:
    """Why git must not be given ``url``, or ``None`` when it may."""
    if url.startswith("-"):
        return "must not start with '-' (git would read it as an option)"
    if any(ord(c) < 32 or ord(c) == 127 for c in url) or url != url.strip():
        return "must not contain spaces at its ends or control characters"
    if _HELPER.match(url):
        return "must be an https, ssh or git URL; the transport::address form runs a program"
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in NETWORK_SCHEMES | {"file"}:
        return f"must be an https, http, ssh, git or file URL, not {scheme.group(1)}://"
    return None


def local_path(url: str) -> str | None:
    """The file system path ``url`` names (a path, or a ``file:`` URL), or ``None`` for a network URL."""
    if url.lower().startswith("file:"):
        return unquote(urlsplit(url).path)
    if _SCHEME.match(url) or (_SCP.match(url) and not url.startswith(("/", "."))):
        return None
    return url
