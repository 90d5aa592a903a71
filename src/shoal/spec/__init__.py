"""The app spec: pure models and rules. No I/O, no imports beyond ``shoal.core``.

The contract the rest of shoal uses:

- ``check(raw) -> dict``: validate a decoded spec (any JSON value) and return the normalised spec
  as a JSON-ready dict, or raise ``SpecInvalid`` listing every problem with its field path.
- ``SpecInvalid`` / ``Problem``: the error and its findings.
- ``load_text(text) -> object``: YAML or JSON text (deploy-template form too) to a value for ``check``.
- ``app_cost(spec) -> float``: USD per month of a normalised spec.
- ``diff(old, new) -> SpecDiff``: which components a change rebuilds, redeploys or removes.
"""

from shoal.spec.check import check
from shoal.spec.cost import app_cost
from shoal.spec.diff import SpecDiff, diff
from shoal.spec.problems import Problem, SpecInvalid
from shoal.spec.text import load_text

__all__ = ["Problem", "SpecDiff", "SpecInvalid", "app_cost", "check", "diff", "load_text"]
