"""The test command's coverage gate: at least 90 % of shoal's lines ran, with the branches of the
pure packages (``shoal.spec``, ``shoal.domain``) measured beside them.

``coverage run -m pytest`` leaves one data file per process (the test session and every ``shoal
serve`` or CLI process a test started); this combines them, prints the table by package and exits
non-zero when the lines fall short. Lines are the gate because most of shoal runs in processes
the tests drive from outside; branches are reported for the packages whose rules are pure and
tested directly, where a missed branch is a missed rule.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import coverage

LINES_REQUIRED = 90.0
BRANCHES_SHOWN = ("spec", "domain")


def _package(path: str) -> str:
    parts = Path(path).parts
    inside = parts[len(parts) - 1 - parts[::-1].index("shoal") + 1:] if "shoal" in parts else parts
    return inside[0].removesuffix(".py") if len(inside) > 1 else "(top level)"


def main() -> int:
    cov = coverage.Coverage()
    data_file = Path(cov.get_option("run:data_file") or ".coverage")  # type: ignore[arg-type]
    if list(data_file.parent.glob(data_file.name + ".*")):
        cov.combine(keep=False)  # this run's files only: an older combined file is replaced, not added to
        cov.save()
    else:  # combined already (the gate run a second time)
        cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out))
        files = json.loads(out.read_text())["files"]
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for path, data in files.items():
        s = data["summary"]
        for row in (sums[_package(path)], sums["TOTAL"]):
            row[0] += s["num_statements"]
            row[1] += s["covered_lines"]
            row[2] += s.get("num_branches", 0)
            row[3] += s.get("covered_branches", 0)
    print(f"{'package':<16}{'lines':>9}{'covered':>10}{'branches':>11}")
    for name in sorted(sums, key=lambda n: (n == "TOTAL", n)):
        lines, covered, branches, taken = sums[name]
        shown = f"{100 * taken / branches:10.1f}%" if name in BRANCHES_SHOWN and branches else f"{'':>11}"
        print(f"{name:<16}{lines:>9}{100 * covered / max(lines, 1):9.1f}%{shown}")
    total = 100 * sums["TOTAL"][1] / max(sums["TOTAL"][0], 1)
    if total < LINES_REQUIRED:
        print(f"coverage gate: {total:.1f} % of lines ran, {LINES_REQUIRED:g} % required", file=sys.stderr)
        return 1
    print(f"coverage gate: {total:.1f} % of lines ran (at least {LINES_REQUIRED:g} % required)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
