"""Label groups: the table of a multi-label ("implicit label") task.

One text, several label groups (a car query: budget, fuel, body...), each with its own values, one
of which may mean "none" (the group does not apply). A classifier with one head per group over one
shared representation is one Linear layer whose output rows are split into per-group slices, so a
multi-label model is an ordinary `*ForSequenceClassification` checkpoint with `num_labels` = the
sum of the group sizes, plus this table: the groups in logit order, their values, which value is
none, and where each group's slice starts. Every runtime returns the concatenated logits; the
table decodes them (softmax and argmax per slice).

A label config file (seed 001's QueryLabels.json) gives the table by hand, either as
`{"budget": ["economy", "premium", "none"], ...}` (a value spelled "none" means none), as
`{"fuel": {"values": [...], "none": "unknown" | null, "weight": 2.0}, ...}`, or in the shape
`LabelGroups.to_json` writes (`{"groups": [{"name": ..., "values": [...], "none": ...}]}`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.errors import DatasetError, SlimbenchError

NONE_VALUE = "none"  # the value that means "no label" when a group's none is not named
GROUP_SEPARATOR = ":"  # a per-group figure's name: `accuracy:source` is group source's accuracy


def group_figure(figure: str, group: str) -> str:
    """The name of `figure` for one label group (`accuracy` -> `accuracy:GROUP`)."""
    return f"{figure}{GROUP_SEPARATOR}{group}"


def split_group_figure(name: str) -> tuple[str, str | None]:
    """(`figure`, group) of a per-group figure's name; (name, None) for any other."""
    figure, sep, group = name.partition(GROUP_SEPARATOR)
    return (figure, group) if sep and group else (name, None)


@dataclass(frozen=True)
class LabelGroup:
    """One group: its values in logit order, the one meaning none (or None), its loss weight."""

    name: str
    values: tuple[str, ...]
    none: str | None = None
    weight: float = 1.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "values": list(self.values), "none": self.none}
        if self.weight != 1.0:
            out["weight"] = self.weight
        return out


@dataclass(frozen=True)
class LabelGroups:
    """The groups of a multi-label task, in logit order."""

    groups: tuple[LabelGroup, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(g.values) for g in self.groups)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Where each group's slice of the logits starts."""
        return tuple(int(x) for x in np.cumsum((0, *self.sizes[:-1])))

    @property
    def width(self) -> int:
        """The number of logits: the sum of the group sizes."""
        return sum(self.sizes)

    def slices(self) -> list[slice]:
        return [slice(o, o + k) for o, k in zip(self.offsets, self.sizes, strict=True)]

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(g.weight for g in self.groups)

    def flat_names(self) -> tuple[str, ...]:
        """One name per logit, `group=value` (the checkpoint's id2label)."""
        return tuple(f"{g.name}={v}" for g in self.groups for v in g.values)

    def none_indices(self) -> tuple[int | None, ...]:
        """Per group, the index of its none value within the group (None when it has none)."""
        return tuple(g.values.index(g.none) if g.none is not None else None for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        return {"groups": [g.to_json() for g in self.groups]}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_json(cls, data: Any, where: str, error: type[SlimbenchError] = DatasetError) -> LabelGroups:
        """The table from a label config or a saved table; `error(where: ...)` names what is wrong."""
        if isinstance(data, Mapping) and set(data) == {"groups"} and isinstance(data["groups"], list):
            items: list[tuple[Any, Any]] = []
            for k, g in enumerate(data["groups"]):
                if not isinstance(g, Mapping) or not isinstance(g.get("name"), str):
                    raise error(f"{where}: group {k + 1} is not an object with a \"name\"")
                items.append((g["name"], g))
        elif isinstance(data, Mapping) and data:
            items = list(data.items())
        else:
            raise error(f"{where}: a label config is a JSON object of label groups, e.g. "
                        "{\"budget\": [\"economy\", \"premium\", \"none\"]}")
        return cls(tuple(_group(str(name), spec, where, error) for name, spec in items))

    def decode(self, logits: np.ndarray) -> np.ndarray:
        """int (N, groups): the argmax of each group's slice."""
        logits = np.asarray(logits)
        self._check_width(logits)
        return np.stack([logits[:, s].argmax(axis=-1) for s in self.slices()], axis=-1).astype(np.int64)

    def proba(self, logits: np.ndarray) -> np.ndarray:
        """(N, width): a softmax over each group's slice (each slice sums to 1)."""
        logits = np.asarray(logits, dtype=np.float64)
        self._check_width(logits)
        out = np.empty_like(logits)
        for s in self.slices():
            z = logits[:, s] - logits[:, s].max(axis=-1, keepdims=True)
            e = np.exp(z)
            out[:, s] = e / e.sum(axis=-1, keepdims=True)
        return out.astype(np.float32)

    def named(self, indices: Sequence[int], include_none: bool = False) -> dict[str, str]:
        """{group: value} of one text's per-group indices; groups whose value is none are left out
        unless `include_none`."""
        out = {}
        for g, i in zip(self.groups, indices, strict=True):
            value = g.values[int(i)]
            if include_none or value != g.none:
                out[g.name] = value
        return out

    def named_proba(self, row: np.ndarray) -> dict[str, dict[str, float]]:
        """{group: {value: probability}} of one text's per-group probabilities."""
        return {g.name: {v: float(p) for v, p in zip(g.values, row[s], strict=True)}
                for g, s in zip(self.groups, self.slices(), strict=True)}

    def scores(self, pred: Sequence[Sequence[int]], gold: Sequence[Sequence[int]]) -> dict[str, Any]:
        """Exact match (every group right: the headline), micro-F1 over the labels that are not none,
        and each group's accuracy and macro-F1, for per-group index rows."""
        from slimbench.stats import exact_match, group_accuracies, group_macro_f1s, implicit_micro_f1

        acc, f1 = group_accuracies(pred, gold), group_macro_f1s(pred, gold, self.sizes)
        return {"exact_match": exact_match(pred, gold), "micro_f1": implicit_micro_f1(pred, gold, self.none_indices()),
                "groups": {n: {"accuracy": a, "macro_f1": f} for n, a, f in zip(self.names, acc, f1, strict=True)}}

    def _check_width(self, logits: np.ndarray) -> None:
        if logits.ndim != 2 or logits.shape[1] != self.width:
            raise ValueError(f"logits of shape {logits.shape} do not fit label groups of {self.width} outputs "
                             f"({', '.join(f'{n}: {k}' for n, k in zip(self.names, self.sizes, strict=True))})")


def _group(name: str, spec: Any, where: str, error: type[SlimbenchError]) -> LabelGroup:
    weight: Any = 1.0
    values: Any
    if isinstance(spec, list):
        values, none = spec, (NONE_VALUE if NONE_VALUE in spec else None)
    elif isinstance(spec, Mapping):
        values = spec.get("values")
        none = spec.get("none", NONE_VALUE if isinstance(values, list) and NONE_VALUE in values else None)
        weight = spec.get("weight", 1.0)
    else:
        raise error(f"{where}: label group {name!r} must be a list of values or an object with \"values\"")
    if not name.strip():
        raise error(f"{where}: a label group has an empty name")
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise error(f"{where}: label group {name!r}: \"values\" must be a list of non-empty strings")
    if len(set(values)) != len(values):
        raise error(f"{where}: label group {name!r} lists a value twice ({values})")
    if len(values) < 2:
        raise error(f"{where}: label group {name!r} has {len(values)} value(s) {values}; a group needs at least two "
                    "(e.g. a value and 'none')")
    if none is not None and none not in values:
        raise error(f"{where}: label group {name!r}: its none value {none!r} is not one of its values {values}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise error(f"{where}: label group {name!r}: weight {weight!r} must be a number > 0")
    return LabelGroup(name, tuple(values), none, float(weight))


def read_label_config(path: Path) -> LabelGroups:
    """A label config file (see the module's docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"label config {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DatasetError(f"label config {path}: not readable JSON ({getattr(err, 'msg', err)})") from None
    return LabelGroups.from_json(data, f"label config {path}")


def _value_order(value: str) -> tuple[bool, int, str]:
    """Values sorted as the single-label path sorts class names: integers numerically first."""
    numeric = value.lstrip("-").isdigit()
    return (not numeric, int(value) if numeric else 0, value)


def index_rows(path: Path, lines: Sequence[int], rows: Sequence[Mapping[str, str]], names: Sequence[str],
               groups: LabelGroups | None = None, known: str = "the label config") -> tuple[LabelGroups, list[tuple[int, ...]]]:
    """Each row's per-group value indices, and the table: `groups` as given (every value must be one
    of its values; `known` says where they came from, for the message), else built from the rows --
    values sorted, a value spelled "none" as the none value, every group with at least two values."""
    values: list[list[str]] = []
    for line, row in zip(lines, rows, strict=True):
        got = []
        for name in names:
            value = row.get(name)
            if value is None:
                raise DatasetError(f"{path}:{line}: no value for label group {name!r}; every row needs one per "
                                   f"group ({', '.join(names)}) -- write '{NONE_VALUE}' where a group does not apply")
            value = value.strip()
            if not value:
                raise DatasetError(f"{path}:{line}: label group {name!r} is empty; give a value (or "
                                   f"'{NONE_VALUE}' where the group does not apply)")
            got.append(value)
        values.append(got)
    if groups is None:
        built = []
        for k, name in enumerate(names):
            seen = sorted({v[k] for v in values}, key=_value_order)
            if len(seen) < 2:
                only = "only 'none'" if seen == [NONE_VALUE] else f"only one value ({seen[0]!r})"
                raise DatasetError(f"{path}: label group {name!r} has {only} in every row; a group needs at least "
                                   "two values to be learnt -- drop the group or give rows of its other values")
            built.append(LabelGroup(name, tuple(seen), NONE_VALUE if NONE_VALUE in seen else None))
        groups = LabelGroups(tuple(built))
    index = [{v: i for i, v in enumerate(g.values)} for g in groups.groups]
    out = []
    for line, got in zip(lines, values, strict=True):
        for k, value in enumerate(got):
            if value not in index[k]:
                raise DatasetError(f"{path}:{line}: label group {names[k]!r} has value {value!r}, which "
                                   f"{known} does not have {list(groups.groups[k].values)}")
        out.append(tuple(index[k][value] for k, value in enumerate(got)))
    return groups, out
