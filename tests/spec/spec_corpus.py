"""Loading the spec corpus in tests/data/specs (shared by the unit and contract tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"


@dataclass(frozen=True)
class InvalidCase:
    name: str
    spec: Any
    problems: tuple[tuple[str, str], ...]  # (path, message substring)


def valid_files() -> list[Path]:
    return sorted(p for p in (SPECS / "valid").iterdir() if p.suffix in (".yaml", ".json"))


def invalid_cases() -> list[InvalidCase]:
    cases = []
    for path in sorted((SPECS / "invalid").iterdir()):
        if path.suffix == ".json":
            spec = json.loads(path.read_text())["spec"]
            expected = yaml.safe_load(path.with_name(path.stem + ".problems.yaml").read_text())["problems"]
        elif path.suffix == ".yaml" and not path.name.endswith(".problems.yaml"):
            data = yaml.safe_load(path.read_text())
            spec, expected = data["spec"], data["problems"]
        else:
            continue
        cases.append(InvalidCase(path.stem, spec, tuple((p["path"], p["message"]) for p in expected)))
    return cases
