"""Per-layer quantization sensitivity on the validation split, and a mixed-precision plan chosen from
it by budget.

Sensitivity: each Linear layer (a unit, `slimbench.build.nbits`) is quantized alone to the low
precision while every other weight stays fp32, and the graph is run through onnxruntime on the
validation texts: the change in validation loss and accuracy against the fp32 graph, and how often
its labels agree with the fp32 graph's. The test split is never read here.

Plan: every unit starts at the low precision; the most sensitive units (largest validation loss
increase) move to the high precision, the smallest such prefix found by bisection whose whole graph
meets the budget on validation; if even all at high precision miss it, the same order moves units
to fp32. Every plan tried is recorded with its estimated size, before the graph is built.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.build.nbits import BLOCK_SIZE, estimate_bytes, quantize_weights
from slimbench.data import Example


@dataclass
class ValidationSet:
    """The validation texts encoded once, in length-ordered batches (little padding), run through an
    onnxruntime graph; logits come back in the split's order."""

    ids: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (row indexes, input_ids, attention_mask)
    labels: np.ndarray
    threads: int

    @classmethod
    def encode(cls, examples: Sequence[Example], encoder: Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]],
               threads: int, batch_size: int = 64) -> ValidationSet:
        texts = [e.text for e in examples]
        order = np.argsort([len(t) for t in texts], kind="stable")
        batches = []
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = encoder([texts[i] for i in idx])
            batches.append((idx, ids, mask))
        return cls(batches, np.array([e.label for e in examples]), threads)

    def logits(self, graph: Path) -> np.ndarray:
        from slimbench.runtimes.runners import onnx_session

        session = onnx_session(graph, self.threads)
        names = {i.name for i in session.get_inputs()}
        out: np.ndarray | None = None
        for idx, ids, mask in self.ids:
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            part = session.run(None, {k: v for k, v in feed.items() if k in names})[0]
            if out is None:
                out = np.zeros((len(self.labels), part.shape[1]), dtype=np.float32)
            out[idx] = part
        assert out is not None
        return out

    def score(self, logits: np.ndarray, reference: np.ndarray | None = None) -> dict[str, float]:
        """Mean cross-entropy, accuracy and (with `reference`) agreement of the labels with it."""
        z = logits - logits.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        out = {"loss": float(-logp[np.arange(len(self.labels)), self.labels].mean()),
               "accuracy": float((logits.argmax(-1) == self.labels).mean())}
        if reference is not None:
            out["agreement"] = float((logits.argmax(-1) == reference.argmax(-1)).mean())
        return out


def layer_sensitivity(graph: Path, units: Mapping[str, Any], val: ValidationSet, bits: int,
                      block_size: int = BLOCK_SIZE, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Each unit quantized alone to `bits`: its validation loss and accuracy change against the fp32
    `graph` (accuracy in points), and its labels' agreement with the fp32 graph's; most sensitive first."""
    reference = val.logits(graph)
    base = val.score(reference)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.onnx"
        for k, unit in enumerate(units, start=1):
            quantize_weights(graph, one, {unit: bits}, embeddings=False, block_size=block_size)
            s = val.score(val.logits(one), reference)
            rows.append({"unit": unit, "loss_increase": s["loss"] - base["loss"],
                         "accuracy_drop": 100 * (base["accuracy"] - s["accuracy"]), "agreement": s["agreement"]})
            if k % 6 == 0 or k == len(units):
                log(f"  sensitivity: {k}/{len(units)} layers at INT{bits}")
    rows.sort(key=lambda r: -r["loss_increase"])
    return {"split": "val", "texts": len(val.labels), "bits": bits, "fp32": base, "layers": rows}


@dataclass(frozen=True)
class Budget:
    """What a mixed-precision plan must keep on validation, against the fp32 graph: at most
    `max_drop` points of accuracy lost, at least `min_agreement` of its labels; or, with `top_k`, no
    search: the `top_k` most sensitive units at the high precision."""

    max_drop: float | None = None
    min_agreement: float | None = None
    top_k: int | None = None

    def met(self, score: Mapping[str, float], fp32: Mapping[str, float]) -> bool:
        if self.max_drop is not None and 100 * (fp32["accuracy"] - score["accuracy"]) > self.max_drop + 1e-9:
            return False
        return self.min_agreement is None or score["agreement"] >= self.min_agreement - 1e-12

    def describe(self) -> str:
        if self.top_k is not None:
            return f"the {self.top_k} most sensitive layers at the higher precision"
        parts = []
        if self.max_drop is not None:
            parts.append(f"validation accuracy within {self.max_drop:g} points of fp32")
        if self.min_agreement is not None:
            parts.append(f"labels agreeing with fp32 on at least {self.min_agreement:.1%} of validation texts")
        return " and ".join(parts)


def plan_for(order: Sequence[str], units: Mapping[str, Any], promoted: int, low: int, high: int | None,
             base: int | None = None) -> dict[str, int | None]:
    """The first `promoted` units of `order` at `high`, the rest at `low` (units not in `order`: `base`)."""
    plan: dict[str, int | None] = {u: base for u in units}
    for k, unit in enumerate(order):
        plan[unit] = high if k < promoted else low
    return plan


def choose_plan(order: Sequence[str], units: Mapping[str, Any], budget: Budget, fp32: Mapping[str, float],
                evaluate: Callable[[dict[str, int | None]], dict[str, float]], low: int = 4,
                high: int = 8, block_size: int = BLOCK_SIZE, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The smallest plan meeting `budget` (see the module docstring); `order`: units most sensitive
    first. `evaluate(plan)` scores a plan's graph on validation. Returns the plan and every plan tried."""
    tried: list[dict[str, Any]] = []

    def trial(promoted: int, high_bits: int | None, low_bits: int) -> bool:
        plan = plan_for(order, units, promoted, low_bits, high_bits)
        estimate = estimate_bytes(units, plan, block_size)
        score = evaluate(plan)
        ok = budget.met(score, fp32)
        tried.append({"promoted": promoted, "to": _label(high_bits), "rest": _label(low_bits),
                      "estimated_bytes": estimate, **score, "meets_budget": ok})
        log(f"  plan: {promoted} most sensitive at {_label(high_bits)}, rest {_label(low_bits)}: estimated "
            f"{estimate / 1e6:.1f} MB of weights, validation accuracy {score['accuracy']:.4f}, agreement "
            f"{score.get('agreement', 1.0):.3f}" + (" (within budget)" if ok else ""))
        return ok

    chosen: tuple[int, int | None, int] | None
    if budget.top_k is not None:
        chosen = (min(budget.top_k, len(order)), high, low)
        trial(*chosen)
    else:
        chosen = None
        for high_bits, low_bits in ((high, low), (None, high)):  # INT8 promotions, then fp32 over INT8
            if trial(0, high_bits, low_bits):
                chosen = (0, high_bits, low_bits)
                break
            if not trial(len(order), high_bits, low_bits):
                continue
            lo, hi = 0, len(order)  # fails at lo, meets at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if trial(mid, high_bits, low_bits) else (mid, hi)
            chosen = (hi, high_bits, low_bits)
            break
        if chosen is None:
            chosen = (len(order), None, high)  # nothing quantized meets it: all fp32 but the unsearched
    promoted, high_bits, low_bits = chosen
    plan = plan_for(order, units, promoted, low_bits, high_bits)
    return {"budget": budget.describe(), "plan": {u: _label(b) for u, b in plan.items()},
            "promoted": chosen[0], "estimated_bytes": estimate_bytes(units, plan, block_size), "tried": tried}


def _label(bits: int | None) -> str:
    return "fp32" if bits is None else f"int{bits}"


def bits_of(label: str) -> int | None:
    return None if label == "fp32" else int(label.removeprefix("int"))
