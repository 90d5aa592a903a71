"""Spec files for ``shoal apps``: read one, and point spec problems the API reports at its lines.

The API reports problems in its message (``error validating app spec field "services[0].name": ...``,
or several joined by ``; ``); each becomes its own line, with the file line it is about when the path
can be found in the YAML (best effort: the nearest existing parent otherwise).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shoal.cli.output import EXIT_API, CliError
from shoal.core.errors import ShoalError
from shoal.spec import load_text

_PROBLEM = re.compile(r'"([^"]*)": (.*?)(?=; "[^"]*": |$)')
_SINGLE = re.compile(r'^error validating app spec field "([^"]*)": (.*)$')
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class SpecFile:
    path: str
    text: str
    spec: dict[str, Any]


def read_spec_file(path: str) -> SpecFile:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read spec file {path}: {exc}", EXIT_API) from exc
    try:
        spec = load_text(text)
    except ShoalError as exc:
        raise CliError(f"{path}: {exc.message}", EXIT_API) from exc
    if not isinstance(spec, dict):
        raise CliError(f"{path}: an app spec must be a mapping", EXIT_API)
    return SpecFile(path=path, text=text, spec=spec)


def spec_problems(message: str) -> list[tuple[str, str]]:
    """``(path, message)`` pairs found in an API error message; empty if it is not a spec error."""
    single = _SINGLE.match(message)
    if single:
        return [(single.group(1), single.group(2))]
    if not message.startswith("error validating app spec"):
        return []
    return [(m.group(1), m.group(2)) for m in _PROBLEM.finditer(message.split(": ", 2)[-1])]


def problem_lines(message: str, spec_file: SpecFile | None) -> list[str]:
    lines = []
    for path, text in spec_problems(message):
        lines.append(f"  {path}: {text}" if path else f"  {text}")
        where = _locate(spec_file, path) if spec_file else None
        if where is not None and spec_file is not None:
            number, source = where
            lines.append(f"    --> {spec_file.path}:{number}: {source.strip()}")
    return lines


def _locate(spec_file: SpecFile, path: str) -> tuple[int, str] | None:
    try:
        node = yaml.compose(spec_file.text)
    except yaml.YAMLError:
        return None
    if isinstance(node, yaml.MappingNode) and _child(node, "spec") is not None and _child(node, "name") is None:
        node = _child(node, "spec")  # the deploy-template form
    if node is None:
        return None
    for name, index in _PATH_PART.findall(path):
        found = _child(node, name) if name else _item(node, int(index))
        if found is None:
            break
        node = found
    line = node.start_mark.line
    source = spec_file.text.splitlines()
    return (line + 1, source[line]) if line < len(source) else None


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                # A scalar value sits on its key's line; a block mapping starts at its key too.
                return key_node if not isinstance(value, (yaml.MappingNode, yaml.SequenceNode)) else value
    return None


def _item(node: yaml.Node, index: int) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and index < len(node.value):
        item: yaml.Node = node.value[index]
        return item
    return None
