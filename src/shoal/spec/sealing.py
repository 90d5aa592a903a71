"""Sealing secrets in a normalised spec: ``type: SECRET`` env values and image registry credentials
are stored and shown only as ``EV[1:...:...]`` (do-app-platform.md §5.3).

A value sent back as it was read (an ``EV[...]``) is kept as it is; a plaintext is encrypted.
Encryption is deterministic per scope (the owning account), so re-submitting a spec read from the
API changes nothing and creates no new ciphertext. An ``EV[...]`` this server cannot open (a spec
exported from DigitalOcean carries DigitalOcean's) is kept too — the spec is valid there — and
reported by ``foreign_secrets``; a deployment needing its plaintext fails with a clear reason.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from shoal.core.errors import InvalidArgument
from shoal.core.secrets import SecretBox, is_encrypted

_COMPONENT_LISTS = ("services", "static_sites", "workers", "jobs", "functions")


def _secret_slots(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(path, holder, key) for every secret value in the spec."""
    lists = [("envs", spec.get("envs") or [])]
    for kind in _COMPONENT_LISTS:
        for i, component in enumerate(spec.get(kind) or []):
            lists.append((f"{kind}[{i}].envs", component.get("envs") or []))
            image = component.get("image")
            if isinstance(image, dict) and image.get("registry_credentials"):
                yield f"{kind}[{i}].image.registry_credentials", image, "registry_credentials"
    for path, envs in lists:
        for j, var in enumerate(envs):
            if var.get("type") == "SECRET" and isinstance(var.get("value"), str) and var["value"] != "":
                yield f"{path}[{j}].value", var, "value"


def seal(spec: dict[str, Any], box: SecretBox, scope: str) -> dict[str, Any]:
    """A copy of ``spec`` with every plaintext secret encrypted."""
    sealed = copy.deepcopy(spec)
    for _, holder, key in _secret_slots(sealed):
        if not is_encrypted(holder[key]):
            holder[key] = box.encrypt(scope, holder[key])
    return sealed


def foreign_secrets(spec: dict[str, Any], box: SecretBox, scope: str) -> list[str]:
    """Paths of ``EV[...]`` values this server cannot decrypt (made by another server, or altered)."""
    found = []
    for path, holder, key in _secret_slots(spec):
        try:
            box.decrypt(scope, holder[key])
        except InvalidArgument:
            found.append(path)
    return found


def plaintexts(spec: dict[str, Any], box: SecretBox, scope: str) -> list[str]:
    """Every secret's plaintext, for masking them in logs."""
    found = []
    for _, holder, key in _secret_slots(spec):
        try:
            found.append(box.decrypt(scope, holder[key]) if is_encrypted(holder[key]) else holder[key])
        except InvalidArgument:
            continue
    return found
