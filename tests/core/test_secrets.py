"""SecretBox: deterministic, scope-bound EV[...] encryption of secret env values."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from shoal.core.errors import InvalidArgument
from shoal.core.secrets import SecretBox, is_encrypted

KEY = bytes(range(32))
APP = "4f6c71e2-06a1-4b2c-9b1e-0f8a7c7d2e11"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(KEY)


def _parts(value: str) -> tuple[bytes, bytes]:
    _version, nonce, sealed = value[len("EV["):-1].split(":")
    return base64.b64decode(nonce), base64.b64decode(sealed)


def test_round_trip(box: SecretBox) -> None:
    value = box.encrypt(APP, "s3cr3t password")
    assert value.startswith("EV[1:") and value.endswith("]")
    assert is_encrypted(value)
    assert box.decrypt(APP, value) == "s3cr3t password"


def test_same_inputs_give_the_same_value(box: SecretBox) -> None:
    assert box.encrypt(APP, "x") == box.encrypt(APP, "x") == SecretBox(KEY).encrypt(APP, "x")
    assert box.encrypt(APP, "x") != box.encrypt(APP, "y")


def test_scopes_are_separate(box: SecretBox) -> None:
    here, there = box.encrypt(APP, "same"), box.encrypt("other-app", "same")
    assert here != there
    assert _parts(here)[1] != _parts(there)[1]
    with pytest.raises(InvalidArgument, match="not encrypted by this server for this app"):
        box.decrypt("other-app", here)


def test_scope_and_plaintext_boundary_is_unambiguous(box: SecretBox) -> None:
    assert _parts(box.encrypt("ab", "c"))[0] != _parts(box.encrypt("a", "bc"))[0]


@pytest.mark.parametrize("flip", ["nonce", "ciphertext"])
def test_tampering_is_detected(box: SecretBox, flip: str) -> None:
    nonce, sealed = _parts(box.encrypt(APP, "hello"))
    if flip == "nonce":
        nonce = bytes([nonce[0] ^ 1]) + nonce[1:]
    else:
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    forged = f"EV[1:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}]"
    with pytest.raises(InvalidArgument):
        box.decrypt(APP, forged)


def test_wrong_key_is_detected(box: SecretBox) -> None:
    value = SecretBox(b"\xff" * 32).encrypt(APP, "hello")
    with pytest.raises(InvalidArgument, match="not encrypted by this server"):
        box.decrypt(APP, value)


@pytest.mark.parametrize("value", [
    "", "plain text", "EV[]", "EV[1::]", "EV[2:AAAA:AAAA]", "EV[1:AAAA]", "EV[1:AA*A:AAAA]",
    "EV[1:AAAA:AAAA", " EV[1:AAAA:AAAA]", "EV[1:A:AAAA]",
])
def test_malformed_values_are_refused(box: SecretBox, value: str) -> None:
    assert not is_encrypted(value) or value == "EV[1:A:AAAA]"
    with pytest.raises(InvalidArgument, match="EV|not encrypted"):
        box.decrypt(APP, value)


def test_a_digitalocean_value_is_recognised_but_not_ours(box: SecretBox) -> None:
    value = "EV[1:zqiRIeaaYK/NqctZDYzy6t0pTrtRDeq8:wqGpZRrsKN5nPhWQrS479cfBiXT0WQ==]"
    assert is_encrypted(value)
    with pytest.raises(InvalidArgument, match="not encrypted by this server"):
        box.decrypt(APP, value)


@pytest.mark.parametrize("plaintext", ["", "ünïcødé ✓ 密码 🔑", "line\nbreak\x00nul", "x" * 10_000])
def test_unusual_plaintexts_round_trip(box: SecretBox, plaintext: str) -> None:
    assert box.decrypt(APP, box.encrypt(APP, plaintext)) == plaintext


def test_key_must_be_32_bytes() -> None:
    for size in (0, 16, 31, 33, 64):
        with pytest.raises(ValueError, match="32 bytes"):
            SecretBox(b"k" * size)


def test_an_older_data_dirs_link_key_is_kept_under_its_new_name(tmp_path: Path) -> None:
    from shoal.bootstrap import SIGNING_KEY, secret_key

    (tmp_path / "secret.key").write_bytes(b"k" * 32)  # what shoal called it before
    assert secret_key(tmp_path) == b"k" * 32  # links signed before the upgrade still verify
    assert (tmp_path / SIGNING_KEY).read_bytes() == b"k" * 32 and not (tmp_path / "secret.key").exists()
    assert secret_key(tmp_path, "secrets.key") != b"k" * 32  # the sealing key is its own
