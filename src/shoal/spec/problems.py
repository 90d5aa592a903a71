"""Spec problems: every finding carries the field path it is about, and all are reported together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shoal.core.errors import InvalidArgument


@dataclass(frozen=True, order=True)
class Problem:
    path: str  # JSON path with indexes, e.g. ``services[1].routes[0].path``; "" for the whole spec
    message: str

    def __str__(self) -> str:
        return f'error validating app spec field "{self.path}": {self.message}' if self.path else self.message


class SpecInvalid(InvalidArgument):
    """An app spec with one or more problems; the message starts like DigitalOcean's and lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            # An empty list would be a bug in a caller; still say something useful.
            problems = [Problem("", "the app spec is invalid")]
        self.problems = sorted(set(problems), key=_problem_order(problems))
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1 and self.problems[0].path:
            return str(self.problems[0])
        if len(self.problems) == 1:
            return f"error validating app spec: {self.problems[0].message}"
        lines = "; ".join(f'"{p.path}": {p.message}' if p.path else p.message for p in self.problems)
        return f"error validating app spec: {len(self.problems)} problems: {lines}"


def _problem_order(problems: list[Problem]) -> Callable[[Problem], int]:
    first_seen = {p: i for i, p in reversed(list(enumerate(problems)))}
    return lambda p: first_seen[p]
