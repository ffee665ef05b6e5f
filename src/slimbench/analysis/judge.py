"""The one judgement of change: did a figure get worse, better, or can we not tell?

Every place that says "changed" calls this module: the paired A/B gate (`slimbench compare`), the
single-run gate against a committed baseline (`slimbench gate`) and the report's comparison
section. It reads numbers only; it neither measures nor renders.

Vocabulary, for a cost (lower is better: time, bytes, memory):
- ``change``: candidate / baseline (1.0 = unchanged), with a confidence interval [low, high];
- ``floor``: the smallest relative change worth reporting (0.05 = 5 %), calibrated from A/A runs;
- ``regression``: change above the floor *and* significant (the CI lies above 1, and the test's
  p-value, when there is one, is below alpha);
- ``improvement``: the mirror image;
- ``inconclusive``: beyond the floor, not significant -- more samples would tell;
- ``None``: within the floor, nothing to say.
"""

from __future__ import annotations

import math

REGRESSION, IMPROVEMENT, INCONCLUSIVE = "regression", "improvement", "inconclusive"


def judge(change: float, low: float, high: float, floor: float, p: float | None = None,
          alpha: float = 0.05) -> str | None:
    """The verdict on a cost's ratio `change` (candidate / baseline) and its confidence interval."""
    if not all(math.isfinite(x) for x in (change, low, high)):
        return INCONCLUSIVE if math.isfinite(change) and change - 1 > floor else None
    test_ok = p is None or p < alpha
    if change - 1 > floor:
        return REGRESSION if low > 1 and test_ok else INCONCLUSIVE
    if 1 - change > floor and high < 1 and test_ok:
        return IMPROVEMENT
    return None


def judge_growth(baseline: float, current: float, tolerance: float) -> str | None:
    """A deterministic cost (bytes, parameters): growth beyond `tolerance` (relative) is a regression."""
    if baseline == current:
        return None
    change = current / baseline - 1 if baseline else math.inf
    if change > tolerance:
        return REGRESSION
    if change < -tolerance:
        return IMPROVEMENT
    return None


def judge_drop(baseline: float, current: float, tolerance: float) -> str | None:
    """A deterministic score (accuracy, as a ratio): a drop beyond `tolerance` (absolute) is a regression."""
    drop = baseline - current
    if drop > tolerance + 1e-12:
        return REGRESSION
    if -drop > tolerance + 1e-12:
        return IMPROVEMENT
    return None
