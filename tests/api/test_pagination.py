from __future__ import annotations

import pytest
from starlette.datastructures import URL, QueryParams

from shoal.api.pagination import PageRequest, links, page_request
from shoal.core.errors import BadRequest


def test_defaults_and_bounds() -> None:
    assert page_request(QueryParams("")) == PageRequest(1, 20)
    assert page_request(QueryParams("page=3&per_page=200")) == PageRequest(3, 200)
    for bad in ("per_page=0", "per_page=201", "per_page=abc", "page=0", "page=-2", "page=4611686018427387904"):
        with pytest.raises(BadRequest):
            page_request(QueryParams(bad))


def test_links_only_where_they_make_sense() -> None:
    url = URL("https://h:1/v2/apps?with_projects=true&page=2&per_page=2")
    pages = links(url, PageRequest(2, 2), total=5)["pages"]
    assert pages == {
        "first": "https://h:1/v2/apps?with_projects=true&page=1&per_page=2",
        "prev": "https://h:1/v2/apps?with_projects=true&page=1&per_page=2",
        "next": "https://h:1/v2/apps?with_projects=true&page=3&per_page=2",
        "last": "https://h:1/v2/apps?with_projects=true&page=3&per_page=2",
    }
    assert links(url, PageRequest(1, 20), total=5) == {"pages": {}}
    assert links(url, PageRequest(1, 20), total=0) == {"pages": {}}
    beyond = links(url, PageRequest(7, 2), total=5)["pages"]
    assert set(beyond) == {"first", "prev"} and "page=3" in beyond["prev"]
