"""Turn spec text (YAML or JSON, plain or in the ``.do/deploy.template.yaml`` form) into a value.

The only place a spec is parsed from text; ``check`` then validates the value. YAML is read with a
budget (``load_yaml``), because its aliases let a few kilobytes stand for gigabytes (the "billion
laughs"), and its nesting would otherwise run the composer out of stack.
"""

from __future__ import annotations

import json

import yaml

from shoal.core.errors import BadRequest

MAX_DEPTH = 100  # nested mappings and sequences, counted after aliases are expanded
MAX_ALIASED_NODES = 50_000  # nodes that aliases may add on top of those written out
MAX_ALIASED_CHARS = 4 * 1024 * 1024  # and scalar characters

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # type: ignore[assignment]


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
    # One frame per open collection: [nodes, characters, depth below it]; anchors keep their totals.
    frames: list[list[int]] = [[0, 0, 0]]
    anchors: dict[str, tuple[int, int, int]] = {}
    open_anchors: list[str | None] = [None]
    aliased_nodes = aliased_chars = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                frames.append([1, 0, 0])
                open_anchors.append(event.anchor)
                if len(frames) - 1 > MAX_DEPTH:
                    raise ExcessiveYaml(problem=f"the document is nested more than {MAX_DEPTH} levels deep",
                                        problem_mark=event.start_mark)
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                nodes, chars, depth = frames.pop()
                size = (nodes, chars, depth + 1)
                anchor = open_anchors.pop()
            elif isinstance(event, yaml.ScalarEvent):
                size, anchor = (1, len(event.value), 1), event.anchor
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors:
                    raise ExcessiveYaml(problem="an alias refers to the node that contains it",
                                        problem_mark=event.start_mark)
                size, anchor = anchors.get(event.anchor or "", (0, 0, 0)), None
                aliased_nodes, aliased_chars = aliased_nodes + size[0], aliased_chars + size[1]
                if aliased_nodes > MAX_ALIASED_NODES or aliased_chars > MAX_ALIASED_CHARS:
                    raise ExcessiveYaml(problem="the document's aliases expand to more than "
                                        f"{MAX_ALIASED_NODES} nodes or {MAX_ALIASED_CHARS // 1024} KiB",
                                        problem_mark=event.start_mark)
                if len(frames) - 1 + size[2] > MAX_DEPTH:
                    raise ExcessiveYaml(problem=f"the document is nested more than {MAX_DEPTH} levels deep "
                                        "once its aliases are expanded", problem_mark=event.start_mark)
            else:
                continue
            if anchor is not None:
                anchors[anchor] = size
            top = frames[-1]
            top[0], top[1], top[2] = top[0] + size[0], top[1] + size[1], max(top[2], size[2])
    finally:
        loader.dispose()


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
