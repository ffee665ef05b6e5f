"""Pure statistics over raw samples: percentiles, spread, bootstrap CIs, Mann-Whitney U.

No I/O, no timing: every function takes numbers and returns numbers, so it is tested with
literal values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between order statistics."""
    if len(samples) == 0:
        raise ValueError("percentile of an empty sample")
    return float(np.percentile(np.asarray(samples, dtype=float), q))


@dataclass(frozen=True)
class Summary:
    """Location and spread of raw samples; all in the samples' unit."""

    n: int
    mean: float
    median: float
    p90: float
    p99: float
    min: float
    max: float
    iqr: float
    stdev: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(samples: Sequence[float]) -> Summary:
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("cannot summarize an empty sample")
    q25, q50, q75, q90, q99 = np.percentile(x, [25, 50, 75, 90, 99])
    return Summary(n=int(x.size), mean=float(x.mean()), median=float(q50), p90=float(q90), p99=float(q99),
                   min=float(x.min()), max=float(x.max()), iqr=float(q75 - q25),
                   stdev=float(x.std(ddof=1)) if x.size > 1 else 0.0)


def relative_spread(samples: Sequence[float]) -> float:
    """IQR / median: a robust noise figure (0.1 = the middle half spans 10 % of the median)."""
    s = summarize(samples)
    return s.iqr / s.median if s.median else math.inf


# The bootstrap in memory bounded independently of the sample count (issue 45: a (resamples x n)
# index matrix took 1.1 GB for a 39,300-sample run and 24 GB for a 68 MB results file).
EXACT_BOOTSTRAP_MAX = 20_000  # up to this many values, resamples are drawn value by value, as always
BOOTSTRAP_CELLS = 1 << 21  # resampled values held at once on that path (~16 MB of indices)


def bootstrap_quantiles(x: np.ndarray, q: float, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The q-th percentile (0..100) of each of `resamples` bootstrap resamples of `x`.

    Up to EXACT_BOOTSTRAP_MAX values, the resamples are drawn with `rng.integers` as one
    (resamples x n) matrix would be, a block of rows at a time: the same numbers for the same seed,
    in at most BOOTSTRAP_CELLS values. Beyond it, each resample's quantile is drawn from its exact
    distribution instead (`_order_statistic_quantiles`), in O(n log n) time and O(n + resamples)
    memory: a 1.2 M-sample file no longer needs 2,000 copies of itself.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    if n > EXACT_BOOTSTRAP_MAX:
        return _order_statistic_quantiles(np.sort(x), q, resamples, rng)
    out = np.empty(resamples)
    rows = max(1, BOOTSTRAP_CELLS // max(n, 1))
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        out[start:stop] = np.percentile(x[rng.integers(0, n, (stop - start, n))], q, axis=1)
    return out


def _order_statistic_quantiles(xs: np.ndarray, q: float, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`bootstrap_quantiles` of the sorted sample `xs` without drawing the resamples.

    A resample is n draws xs[floor(n U_i)] with U_i uniform on [0, 1); floor(n u) is monotone, so
    its k-th smallest value is xs[floor(n U_(k))], U_(k) the k-th smallest of n uniforms, which is
    Beta(k, n - k + 1); the next one is U_(k) + (1 - U_(k)) Beta(1, n - k). np.percentile's linear
    rule interpolates between those two order statistics.
    """
    n = xs.size
    h = (n - 1) * q / 100.0
    k = min(int(math.floor(h)), n - 1) + 1  # 1-based rank of the lower order statistic
    frac = h - (k - 1)
    u = rng.beta(k, n - k + 1, resamples)
    low = xs[np.minimum((u * n).astype(np.int64), n - 1)]
    if frac <= 0 or k >= n:
        return low
    u_next = u + (1.0 - u) * rng.beta(1, n - k, resamples)
    high = xs[np.minimum((u_next * n).astype(np.int64), n - 1)]
    return low + frac * (high - low)


def bootstrap_ratio_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95,
                       resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Median(b)/median(a) and its percentile-bootstrap confidence interval."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        raise ValueError("bootstrap needs two non-empty samples")
    rng = np.random.default_rng(seed)
    mx = bootstrap_quantiles(x, 50.0, resamples, rng)
    my = bootstrap_quantiles(y, 50.0, resamples, rng)
    ratios = my / mx
    lo, hi = np.percentile(ratios, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100])
    return float(np.median(y) / np.median(x)), float(lo), float(hi)


def _resampled_tables(counts: Sequence[int], resamples: int, seed: int) -> np.ndarray:
    """[resamples, cells]: the n = sum(counts) paired items resampled, i.e. multinomial draws of
    their table of outcomes."""
    cells = np.asarray(counts, dtype=float)
    n = cells.sum()
    return np.random.default_rng(seed).multinomial(int(n), cells / n, size=resamples)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    lo, hi = np.percentile(values, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100])
    return float(lo), float(hi)


def paired_accuracy_ratio_ci(n: int, reference_right: int, only_reference: int, only_other: int,
                             confidence: float = 0.95, resamples: int = 4000,
                             seed: int = 0) -> tuple[float, float, float]:
    """accuracy(other) / accuracy(reference) on the same `n` items, and its percentile-bootstrap CI.

    The two are paired by item: `only_reference` items only the reference gets right,
    `only_other` only the other. Resampling the n items is a multinomial draw of the 2x2 table
    (both right, only reference, only other, neither), so the CI reflects which items the two
    disagree on, not two independent accuracies.
    """
    both = reference_right - only_reference
    cells = [both, only_reference, only_other, n - both - only_reference - only_other]
    if n <= 0 or min(cells) < 0 or reference_right <= 0:
        raise ValueError(f"not a 2x2 table of {n} items: {[float(c) for c in cells]}")
    draws = _resampled_tables(cells, resamples, seed)
    ref, other = draws[:, 0] + draws[:, 1], draws[:, 0] + draws[:, 2]
    return ((both + only_other) / reference_right, *_interval(other[ref > 0] / ref[ref > 0], confidence))


def paired_accuracy_difference_ci(n: int, only_reference: int, only_other: int, confidence: float = 0.95,
                                  resamples: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """accuracy(other) − accuracy(reference) on the same `n` items, and its percentile-bootstrap CI
    over items (a multinomial draw of: only the reference right, only the other right, the rest)."""
    rest = n - only_reference - only_other
    if n <= 0 or min(only_reference, only_other, rest) < 0:
        raise ValueError(f"not a paired count of {n} items: only reference {only_reference}, only other {only_other}")
    draws = _resampled_tables([only_reference, only_other, rest], resamples, seed)
    return ((only_other - only_reference) / n, *_interval((draws[:, 1] - draws[:, 0]) / n, confidence))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value that a and b come from the same distribution (Mann-Whitney U), as
    `scipy.stats.mannwhitneyu(a, b, alternative="two-sided")` gives it (method "auto"): the exact
    distribution of U when the smaller sample has at most 8 values and no value is tied, else the
    normal approximation with tie and continuity corrections. Written out so that scipy is not a
    dependency: transformers imports `scipy.optimize` whenever scipy is installed, which put ~0.4 s of
    this harness's own library into every torch variant's measured start-up
    (reports/evidence/first-report/no-scipy.md)."""
    if len(a) < 2 or len(b) < 2:
        return 1.0
    n1, n2 = len(a), len(b)
    _, inverse, counts = np.unique(np.concatenate([np.asarray(a, float), np.asarray(b, float)]),
                                   return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # average ranks, 1-based
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    u = max(u1, n1 * n2 - u1)
    if min(n1, n2) <= 8 and not (counts > 1).any():
        dist = _mann_whitney_counts(min(n1, n2), max(n1, n2))
        p = 2.0 * sum(dist[int(round(u)):]) / sum(dist)
    else:
        n = n1 + n2
        ties = float((counts.astype(float) ** 3 - counts).sum())
        sd = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))))
        if sd == 0:
            return 1.0
        z = (u - n1 * n2 / 2.0 - 0.5) / sd
        p = math.erfc(z / math.sqrt(2.0))  # 2 * the normal survival function at z
    return float(min(1.0, max(0.0, p)))


def _mann_whitney_counts(m: int, n: int) -> list[int]:
    """How many of the C(m+n, m) orderings of two samples of sizes m and n give U = 0, 1, ..., m*n:
    the coefficients of the Gaussian binomial [m+n choose m]_q = prod_i (1 - q^(n+i)) / (1 - q^i)."""
    poly = [1] + [0] * (m * n)
    for i in range(1, m + 1):
        for k in range(len(poly) - 1, n + i - 1, -1):  # times (1 - q^(n+i))
            poly[k] -= poly[k - n - i]
        for k in range(i, len(poly)):  # divided by (1 - q^i): exact
            poly[k] += poly[k - i]
    return poly


def _quantile(values: Sequence[float], q: float) -> float:
    """np.percentile(values, q); a round of one sample is that sample (a per-round call on 100,000
    rounds took seconds)."""
    if len(values) == 1:
        return float(values[0])
    return float(np.percentile(np.asarray(values, dtype=float), q))


@dataclass(frozen=True)
class PairedRatio:
    """num/den from samples paired by round: the median over rounds of each round's ratio of
    block quantiles, with a percentile-bootstrap CI over rounds (rounds resampled, pairs kept)."""

    value: float
    low: float
    high: float
    rounds: int  # rounds in which both sides had samples
    per_round: tuple[float, ...]


def paired_ratio(num_rounds: Sequence[Sequence[float] | None], den_rounds: Sequence[Sequence[float] | None],
                 q: float = 50.0, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> PairedRatio:
    """The paired ratio of two variants' q-quantiles (q=50: p50), robust to slow machine drift.

    Each round's ratio compares blocks taken moments apart on the same inputs, so a drift that
    slows both sides cancels in it; the median over rounds ignores a round hit by a burst of noise.
    """
    ratios = []
    for a, b in zip(num_rounds, den_rounds, strict=False):
        if a and b:
            den = _quantile(b, q)
            if den > 0:
                ratios.append(_quantile(a, q) / den)
    if not ratios:
        raise ValueError("no round has samples of both sides")
    r = np.asarray(ratios)
    boot = bootstrap_quantiles(r, 50.0, resamples, np.random.default_rng(seed))
    lo, hi = np.percentile(boot, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100])
    return PairedRatio(float(np.median(r)), float(lo), float(hi), int(r.size), tuple(ratios))


def macro_f1(pred: Sequence[int], gold: Sequence[int], num_labels: int) -> float:
    p, g = np.asarray(pred), np.asarray(gold)
    scores = []
    for c in range(num_labels):
        tp = int(((p == c) & (g == c)).sum())
        fp = int(((p == c) & (g != c)).sum())
        fn = int(((p != c) & (g == c)).sum())
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


# --- multi-label figures: per-group index arrays of shape (texts, groups) -----------------------------

def exact_match(pred: Sequence[Sequence[int]], gold: Sequence[Sequence[int]]) -> float:
    """The share of texts whose every group is right."""
    p, g = np.asarray(pred), np.asarray(gold)
    return float((p == g).all(axis=1).mean()) if len(g) else 0.0


def group_accuracies(pred: Sequence[Sequence[int]], gold: Sequence[Sequence[int]]) -> list[float]:
    """Accuracy of each group (column) alone."""
    p, g = np.asarray(pred), np.asarray(gold)
    return [float(x) for x in (p == g).mean(axis=0)] if len(g) else [0.0] * (p.shape[1] if p.ndim == 2 else 0)


def group_macro_f1s(pred: Sequence[Sequence[int]], gold: Sequence[Sequence[int]], sizes: Sequence[int]) -> list[float]:
    """Macro-F1 of each group over its own values (`sizes`: values per group)."""
    p, g = np.asarray(pred), np.asarray(gold)
    return [macro_f1(p[:, k].tolist(), g[:, k].tolist(), size) for k, size in enumerate(sizes)]


def implicit_micro_f1(pred: Sequence[Sequence[int]], gold: Sequence[Sequence[int]],
                      none: Sequence[int | None]) -> float:
    """Micro-F1 over the labels that are not none -- the "implicit labels found" view: each (text,
    group) whose gold value is not none is a label to find; a predicted value that is not none and
    not the gold one is a false find. `none`: each group's none index (None: every value counts).
    1.0 when there is nothing to find and nothing was found."""
    p, g = np.asarray(pred), np.asarray(gold)
    tp = fp = fn = 0
    for k, n in enumerate(none):
        pk, gk = p[:, k], g[:, k]
        real_p = pk != n if n is not None else np.ones(len(pk), dtype=bool)
        real_g = gk != n if n is not None else np.ones(len(gk), dtype=bool)
        right = pk == gk
        tp += int((real_g & right).sum())
        fp += int((real_p & ~right).sum())
        fn += int((real_g & ~right).sum())
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 1.0
