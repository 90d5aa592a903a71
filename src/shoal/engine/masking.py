"""Hiding secrets in what a deployment prints: every form a secret is likely to be printed in, and
lines that a runtime had to cut in pieces.

A ``SECRET`` value can reach a log as itself, percent-encoded (a URL or form body) or in base64
(an ``Authorization: Basic`` header, a config dump) — and base64 of a longer text shifts with
what comes before the secret, so each of the three alignments has its own stable middle part,
which is masked too (the technique secret scanners use). A line longer than the runtime's limit
arrives in pieces marked ``continued``; they are joined before masking, and a line still too long
is cut only where no secret can straddle the cut.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, quote_plus

MASK = "[secret]"
MIN_MASKED = 4  # very short values would mask ordinary text
MIN_FORM = 6  # a base64 middle part shorter than this would match by chance
MAX_LINE = 64 * 1024  # characters per stored line


def forms(secret: str) -> set[str]:
    """The texts that give ``secret`` away: itself, percent-encoded, and base64 (whole or embedded)."""
    found = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    raw = secret.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        found |= {whole, whole.rstrip("=")}
        for offset in range(3):
            # Base64 of (offset bytes) + secret + (anything): the characters that depend only on the
            # secret start after the prefix's group and end before the last partial group.
            text = encode(b"\0" * offset + raw).decode().rstrip("=")
            start = (offset * 4 + 2) // 3 + (1 if offset else 0)
            end = ((offset + len(raw)) * 4) // 3
            middle = text[start:end]
            if len(middle) >= MIN_FORM:
                found.add(middle)
    return {f for f in found if len(f) >= MIN_MASKED}


class Masker:
    """One deployment's secrets, compiled once into a single pattern (longest forms first)."""

    def __init__(self, secrets: list[str]) -> None:
        every = sorted({f for s in secrets if len(s) >= MIN_MASKED for f in forms(s)}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, every))) if every else None
        self.longest = len(every[0]) if every else 0

    def mask(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def cut(self, text: str) -> tuple[str, str]:
        """``text`` masked as far as it is safe now, and the rest to keep until more arrives: a
        secret may begin in the last ``longest - 1`` characters and end in the next piece."""
        if self._pattern is None:
            return text, ""
        keep = max(0, len(text) - (self.longest - 1))
        for match in self._pattern.finditer(text):
            if match.end() > keep:  # a whole form over the cut: cut before it instead
                keep = min(keep, match.start())
                break
        return self.mask(text[:keep]), text[keep:]


def split(line: str, limit: int = MAX_LINE) -> list[str]:
    """A masked line in pieces of at most ``limit`` characters (never an empty list), never cut
    inside a ``[secret]`` mark."""
    pieces = []
    while len(line) > limit:
        cut = limit
        mark = line.rfind(MASK, max(0, cut - len(MASK) + 1), cut + len(MASK) - 1)
        if 0 < mark < cut < mark + len(MASK):
            cut = mark
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces
