"""``runtime.detector.SourceDetection`` on real git repositories: its deadline and its clean-up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shoal.core.errors import UnprocessableEntity
from shoal.domain.detection import DetectRequest
from shoal.domain.plan import GitSource
from shoal.runtime.detector import SourceDetection
from shoal.runtime.local.sources import LocalSources
from tests.e2e.apps import make_repo


def detector(tmp_path: Path, timeout: float) -> SourceDetection:
    data = tmp_path / "data"
    return SourceDetection(LocalSources(data, (tmp_path / "repos",)), data / "cache" / "detect", timeout)


def test_a_fetch_past_the_deadline_is_a_4xx_and_leaves_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repos" / "py", {"requirements.txt": ""})
    slow = detector(tmp_path, timeout=0.000001)
    with pytest.raises(UnprocessableEntity, match="took longer than"):
        asyncio.run(slow.detect("acct", DetectRequest(GitSource(str(repo), "main"))))
    assert list((tmp_path / "data" / "cache" / "detect").iterdir()) == []


def test_an_allowed_path_is_detected(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repos" / "py", {"requirements.txt": ""})
    found = asyncio.run(detector(tmp_path, 60).detect("acct", DetectRequest(GitSource(str(repo), "main"))))
    assert [c.types for c in found.components] == [("Python",)]
