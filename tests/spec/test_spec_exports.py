"""What shoal.spec offers the rest of shoal: pinned, so a change to it is deliberate."""

from __future__ import annotations

import shoal.spec


def test_public_surface() -> None:
    assert sorted(shoal.spec.__all__) == [
        "Problem", "SpecDiff", "SpecInvalid", "app_cost", "check", "diff", "load_text",
    ]
    for name in shoal.spec.__all__:
        assert getattr(shoal.spec, name) is not None
