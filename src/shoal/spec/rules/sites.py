"""Static sites: which documents they name and where their files are.

DigitalOcean takes file names for ``index_document``, ``error_document`` and
``catchall_document``, and ``output_dir`` is a directory of the build. A name that climbs out of
the site (``../../etc/passwd``), starts at the file system's root, or carries a backslash or a
control character names no file of the site, so it is refused here, before anything is built; the
ingress checks every path it serves as well, so a spec stored before this rule cannot escape either.
"""

from __future__ import annotations

from collections.abc import Iterator

from shoal.spec.problems import Problem
from shoal.spec.rules.view import Json, entries

DOCUMENTS = ("index_document", "error_document", "catchall_document")
MAX_DOCUMENT = 255


def check_sites(spec: Json) -> Iterator[Problem]:
    for path, site in entries(spec, "static_sites"):
        if site.get("catchall_document") is not None and site.get("error_document") is not None:
            yield Problem(f"{path}.catchall_document", "only one of catchall_document or error_document may be set")
        for key in DOCUMENTS:
            value = site.get(key)
            if isinstance(value, str):
                why = document_problem(value)
                if why:
                    yield Problem(f"{path}.{key}", why)
        output_dir = site.get("output_dir")
        if isinstance(output_dir, str) and climbs(output_dir):
            yield Problem(f"{path}.output_dir", "must stay inside the build: '..' is not allowed")


def document_problem(name: str) -> str | None:
    """Why ``name`` is not a plain relative file name inside a site, or ``None`` when it is."""
    if not name:
        return "must name a file of the site"
    if len(name) > MAX_DOCUMENT:
        return f"must be at most {MAX_DOCUMENT} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or "\\" in name:
        return "must be a file name of the site: no backslashes or control characters"
    if name.startswith("/"):
        return "must be a file name relative to the site, not an absolute path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "must be a file name inside the site: '..', '.' and empty path segments are not allowed"
    return None


def climbs(path: str) -> bool:
    """Whether a build-relative path has a ``..`` segment (a leading ``/`` means the build's root)."""
    return ".." in path.replace("\\", "/").split("/")
