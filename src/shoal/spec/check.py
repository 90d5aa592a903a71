"""Validate and normalise an app spec in one call: the entry point the API and CLI use.

Order: the models check types (``parse``); the rules check everything that spans fields or needs
the catalogue — on the validated dump, or on the raw input when the models refused it, so one
type error does not hide the rest; if nothing was found, ``normalize`` fills defaults.
"""

from __future__ import annotations

from typing import Any

from shoal.core.unicode import invalid_path
from shoal.spec.normalize import normalize
from shoal.spec.parse import parse
from shoal.spec.problems import Problem, SpecInvalid
from shoal.spec.rules import find_problems


def check(raw: object) -> dict[str, Any]:
    """The normalised spec for a decoded JSON value, or ``SpecInvalid`` listing every problem.

    Never raises anything else: an internal failure is reported as a problem too, because the
    API promises a 400 (never a 500) for any spec a client can send.
    """
    try:
        return check_strict(raw)
    except SpecInvalid:
        raise
    except RecursionError as error:
        raise SpecInvalid([Problem("", "the app spec is nested too deeply")]) from error
    except Exception as error:  # a bug must still surface as a spec problem, not a 500
        raise SpecInvalid([Problem("", f"the app spec could not be validated ({type(error).__name__})")]) from error


def check_strict(raw: object) -> dict[str, Any]:
    """``check`` without the safety net, so tests see internal errors instead of a problem."""
    broken = invalid_path(raw)
    if broken is not None:
        # Alone: other problems would quote the broken string, and it cannot be encoded.
        raise SpecInvalid([Problem(broken, "must be valid Unicode: it holds an unpaired surrogate")])
    clean, problems = parse(raw)
    subject = clean if clean is not None else raw
    if isinstance(subject, dict):
        problems.extend(find_problems(subject))
    if problems or clean is None:
        raise SpecInvalid(problems)
    return normalize(clean)
