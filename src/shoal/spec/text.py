"""Turn spec text (YAML or JSON, plain or in the ``.do/deploy.template.yaml`` form) into a value.

The only place a spec is parsed from text; ``check`` then validates the value. YAML is read with a
budget (``load_yaml``), because its aliases let a few kilobytes stand for gigabytes (the "billion
laughs"), and its nesting would otherwise run the composer out of stack.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from shoal.core.errors import BadRequest

MAX_DEPTH = 100  # nested mappings and sequences, counted after aliases are expanded
MAX_ALIASED_NODES = 50_000  # nodes that aliases may add on top of those written out
MAX_ALIASED_CHARS = 4 * 1024 * 1024  # and scalar characters

# libyaml's loader when PyYAML was built with it (C-speed and an iterative parser), else PyYAML's own.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ExcessiveYaml(yaml.MarkedYAMLError):
    """A YAML document over the budget: reported like any other YAML error, with where it went over."""


def load_text(text: str) -> object:
    """The decoded spec; a ``{spec: {...}}`` deploy template is unwrapped to its spec."""
    if not text.strip():
        raise BadRequest("the app spec is empty")
    try:
        value: object = json.loads(text)
    except (ValueError, RecursionError):
        value = _load_yaml(text)
    return unwrap_template(value)


def unwrap_template(value: object) -> object:
    if isinstance(value, dict) and "name" not in value and isinstance(value.get("spec"), dict):
        return value["spec"]
    return value


def load_yaml(text: str) -> object:
    """``yaml.safe_load`` within the budget: ``ExcessiveYaml`` (a ``yaml.YAMLError``) past it.

    The budget is checked first on the event stream (libyaml's parser keeps its own stack), so the
    composer and the constructor only ever see a document that is small once expanded."""
    _check_budget(text)
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader


def _check_budget(text: str) -> None:
    loader = _Loader(text)
    budget = _Budget()
    try:
        while loader.check_event():
            budget.see(loader.get_event())
    finally:
        loader.dispose()


class _Budget:
    """Sizes counted off the event stream: one frame per open collection ([nodes, characters,
    depth below it]); each anchor keeps the totals of its node, which every alias of it adds again."""

    def __init__(self) -> None:
        self.frames: list[list[int]] = [[0, 0, 0]]
        self.open_anchors: list[str | None] = [None]
        self.anchors: dict[str, tuple[int, int, int]] = {}
        self.aliased_nodes = self.aliased_chars = 0

    def see(self, event: Any) -> None:
        if isinstance(event, yaml.CollectionStartEvent):
            self.frames.append([1, 0, 0])
            self.open_anchors.append(event.anchor)
            if len(self.frames) - 1 > MAX_DEPTH:
                raise _excessive(f"the document is nested more than {MAX_DEPTH} levels deep", event)
        elif isinstance(event, yaml.CollectionEndEvent):
            nodes, chars, depth = self.frames.pop()
            self._add((nodes, chars, depth + 1), self.open_anchors.pop())
        elif isinstance(event, yaml.ScalarEvent):
            self._add((1, len(event.value), 1), event.anchor)
        elif isinstance(event, yaml.AliasEvent):
            self._add(self._alias(event), None)

    def _alias(self, event: Any) -> tuple[int, int, int]:
        if event.anchor in self.open_anchors:
            raise _excessive("an alias refers to the node that contains it", event)
        size = self.anchors.get(event.anchor or "", (0, 0, 0))  # an unknown one: the loader says so
        self.aliased_nodes += size[0]
        self.aliased_chars += size[1]
        if self.aliased_nodes > MAX_ALIASED_NODES or self.aliased_chars > MAX_ALIASED_CHARS:
            raise _excessive(f"the document's aliases expand to more than {MAX_ALIASED_NODES} nodes or "
                             f"{MAX_ALIASED_CHARS // 1024} KiB", event)
        if len(self.frames) - 1 + size[2] > MAX_DEPTH:
            raise _excessive(f"the document is nested more than {MAX_DEPTH} levels deep once its aliases are "
                             "expanded", event)
        return size

    def _add(self, size: tuple[int, int, int], anchor: str | None) -> None:
        if anchor is not None:
            self.anchors[anchor] = size
        top = self.frames[-1]
        top[0], top[1], top[2] = top[0] + size[0], top[1] + size[1], max(top[2], size[2])


def _excessive(problem: str, event: Any) -> ExcessiveYaml:
    return ExcessiveYaml(problem=problem, problem_mark=event.start_mark)


def _load_yaml(text: str) -> object:
    try:
        return load_yaml(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = error.problem or error.context or "malformed YAML"
        raise BadRequest(f"error parsing app spec{where}: {reason}") from error
    except (yaml.YAMLError, RecursionError, ValueError) as error:
        raise BadRequest(f"error parsing app spec: {error}") from error
