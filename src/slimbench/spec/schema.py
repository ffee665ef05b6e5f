"""A variant spec as data: one TOML table, checked and loaded into a frozen, validated object.

A spec says *what* a variant is (base, architecture overrides, training recipe, post-training
steps, runtime, precision); `slimbench.build` turns it into an artifact directory. Every table is
checked here (`spec_from_dict`, one checker per table), so a bad spec fails with one message that
names the file, the table and the key before anything is built. `slimbench.spec.zoo` holds the
specs of a directory and their hashes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from slimbench.errors import SpecError
from slimbench.extensions import extension, names

# Bump when a builder changes what it produces for the same spec (invalidates cached builds).
# 2: fused AdamW and foreach gradient clipping in build.train.fit (the same update, other rounding).
BUILDER_VERSION = 2

RUNTIMES = ("torch", "onnxruntime", "numpy")  # and any registered runtime extension (slimbench.extensions)
# int4: weight-only 4-bit Linear weights (MatMulNBits); mixed: a per-layer INT4 / INT8 / fp32 plan
PRECISIONS = ("fp32", "int8", "int4", "mixed")
STEPS = ("torch-dynamic-int8", "export-onnx", "onnx-fuse", "onnx-dynamic-int8", "onnx-static-int8",
         "onnx-int4-embeddings", "numpy-reference", "onnx-int4", "onnx-mixed")
NBITS_STEPS = {"onnx-int4": "int4", "onnx-mixed": "mixed"}  # weight-only N-bit steps and their precision
# qat: quantization-aware training of the source's weights for the row's N-bit step (build.qat)
TRAIN_METHODS = ("finetune", "distill", "none", "qat")
ARCH_KEYS = {
    "num_hidden_layers": int, "hidden_size": int, "num_attention_heads": int,
    "intermediate_size": int, "vocab_size": int, "max_position_embeddings": int,
}
# Generous ceilings (a 70 B-parameter LLM fits under each): past them a typo allocates for ever.
ARCH_MAX = {"num_hidden_layers": 256, "hidden_size": 65_536, "num_attention_heads": 1024,
            "intermediate_size": 262_144, "vocab_size": 4_000_000, "max_position_embeddings": 1_048_576}
TRAIN_KEYS = {
    "method": str, "epochs": int, "lr": float, "batch_size": int, "weight_decay": float,
    "warmup": float, "temperature": float, "alpha": float, "hidden_weight": float, "layer_weight": float,
    "seed": int,
    "transfer_data": bool, "max_length": int, "augment_copies": int, "autocast": str,
    "stop_after_epochs": int,
}
# train.autocast: the dtype of the training steps' matmuls (torch CPU autocast; weights, optimizer and
# evaluation stay fp32). bf16 was 1.78x faster per step on one CPU with AVX-512 BF16 and 1.25x slower
# on another with the same flag; "auto" measures which is faster on this machine, once
# (slimbench.build.autocast). It changes the trained weights' bytes, so the value -- or, for "auto",
# the dtype it resolved to -- is part of the spec hash.
TRAIN_AUTOCAST = ("fp32", "bf16", "auto")
INIT_KEYS = {"layers": list, "embeddings": str, "width": str}
WIDTH_BASES = ("pca", "states", "select")  # init.width: how layers map into a narrower student (build.inherit)
TRANSFORM_KEYS = {"trim_vocab": bool}
# heads / ffn: fractions of attention heads / FFN neurons removed (structured, physical);
# sparsity: fraction of encoder Linear weights zeroed (unstructured magnitude), reached over
# `rounds` prune -> recover rounds (progressive); scope: rank weights "global"ly or per "layer".
PRUNE_KEYS = {"heads": float, "ffn": float, "sparsity": float, "scope": str, "rounds": int,
              "importance_texts": int}
CALIBRATE_KEYS = {"texts": int, "method": str, "dynamic_after_gelu": bool}  # static INT8: how many training texts, which calibrator
CALIBRATE_METHODS = ("minmax", "percentile", "entropy")
# torch dynamic INT8: Linear modules whose name starts with one of these prefixes stay fp32;
# smooth_alpha: SmoothQuant migration strength (0 < alpha < 1), input scales calibrated on 512
# training texts (torch_io.smooth_linears); absent: no smoothing. smooth_modules: a regular
# expression of the module names smoothed (default: every encoder Linear)
QUANTIZE_KEYS = {"keep_fp32": list, "smooth_alpha": float, "smooth_modules": str}
# weight-only N-bit steps (build.nbits, build.sensitivity): block_size (weights per scale), embeddings
# (4-bit embedding tables), keep_fp32 (Linear-name prefixes left fp32); for onnx-mixed, the budget:
# max_drop (validation accuracy points vs fp32) and/or min_agreement (share of validation labels equal
# to fp32's), or top_k (that many most sensitive layers at INT8, no search)
NBITS_KEYS = {"block_size": int, "embeddings": bool, "keep_fp32": list, "max_drop": float, "min_agreement": float,
              "top_k": int}
SPEC_KEYS = {"name", "description", "base", "source", "architecture", "init", "train", "steps",
             "transforms", "runtime", "precision", "max_length", "truncation", "prune",
             "calibrate", "quantize", "nbits"}


@dataclass(frozen=True)
class TrainRecipe:
    """The [train] table with its defaults, stated once (the spec keeps the table as written, so
    the spec hash does not change when a default is added here)."""

    method: str = "none"  # finetune | distill | none
    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of all steps
    temperature: float = 2.0  # distillation softmax temperature
    alpha: float = 0.7  # weight of the soft (teacher) loss; 1 - alpha on the gold labels
    hidden_weight: float = 0.0  # weight of the [CLS]-state MSE to the teacher (0: off)
    layer_weight: float = 0.0  # weight of the every-layer, every-token hidden-state MSE to the teacher (0: off)
    seed: int = 0
    transfer_data: bool = False  # distil on the unlabelled transfer texts too
    max_length: int | None = None
    augment_copies: int = 0  # augmented copies of each training text, teacher-labelled
    autocast: str = "fp32"  # fp32 | bf16 | auto: the training steps' compute dtype (TRAIN_AUTOCAST)
    # Epochs actually run (0: all `epochs`): the learning-rate schedule still spans `epochs`, so the
    # weights after epoch k are exactly those a full run has after its epoch k. For a recipe whose
    # best validation epoch is known to come before the last, stopping there keeps the same model
    # and skips the epochs that only overfit.
    stop_after_epochs: int = 0

    @property
    def epochs_run(self) -> int:
        return self.stop_after_epochs or self.epochs


@dataclass(frozen=True)
class PruneConfig:
    """The [prune] table with its defaults."""

    heads: float = 0.0  # fraction of attention heads removed (structured, physical)
    ffn: float = 0.0  # fraction of FFN neurons removed (structured, physical)
    sparsity: float = 0.0  # fraction of encoder Linear weights zeroed (unstructured magnitude)
    scope: str = "global"  # rank weights "global"ly or per "layer"
    rounds: int = 1  # prune -> recover rounds to reach `sparsity`
    importance_texts: int = 2048  # training texts that score heads and neurons

    @property
    def structured(self) -> bool:
        return self.heads > 0 or self.ffn > 0


@dataclass(frozen=True)
class StaticInt8Config:
    """The [calibrate] table of a static-INT8 step with its defaults."""

    texts: int = 512  # training texts the activations are calibrated on
    method: str = "minmax"  # minmax | percentile | entropy
    dynamic_after_gelu: bool = False  # FFN output projections quantized dynamically instead


@dataclass(frozen=True)
class VariantSpec:
    """One variant. `source` names the parent variant (teacher, or the model a step transforms)."""

    name: str
    description: str = ""
    base: str | None = None
    source: str | None = None
    architecture: Mapping[str, int] = field(default_factory=dict)
    init: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[str, ...] = ()
    transforms: Mapping[str, Any] = field(default_factory=dict)
    runtime: str = "torch"
    precision: str = "fp32"
    max_length: int = 64
    options: Mapping[str, Any] = field(default_factory=dict)  # a runtime extension's own table, [RUNTIME]
    truncation: str = "right"
    prune: Mapping[str, Any] = field(default_factory=dict)
    calibrate: Mapping[str, Any] = field(default_factory=dict)
    quantize: Mapping[str, Any] = field(default_factory=dict)
    nbits: Mapping[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.recipe.method

    @property
    def recipe(self) -> TrainRecipe:
        return TrainRecipe(**self.train)

    @property
    def pruning(self) -> PruneConfig:
        return PruneConfig(**self.prune)

    @property
    def static_int8(self) -> StaticInt8Config:
        return StaticInt8Config(**self.calibrate)

    def parents(self) -> tuple[str, ...]:
        return (self.source,) if self.source else ()

    def canonical(self) -> dict[str, Any]:
        """The fields that define the artifact (not the description), JSON-ready."""
        d = asdict(self)
        d.pop("description")
        # Fields added later are left out at their default, so adding them did not rebuild every cache.
        if options := d.pop("options"):  # under the runtime's name, as the spec writes it
            d[self.runtime] = options
        if d["truncation"] == "right":
            d.pop("truncation")
        for key in ("prune", "calibrate", "quantize", "nbits"):
            if not d[key]:
                d.pop(key)
        d["steps"] = list(self.steps)
        if self.method == "distill" and not self.recipe.hidden_weight:
            # The teacher's logits come from its ONNX graph (slimbench.build.teacher_pass), no longer
            # from torch: the same logits to ~1e-5 but not the same bytes, so not the same artifact.
            d["train"] = {**d["train"], "teacher_pass": "onnxruntime"}
        return d


def _check_keys(where: str, table: Mapping[str, Any], known: Mapping[str, type] | set[str]) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")


def _check_types(where: str, table: Mapping[str, Any], types: Mapping[str, type]) -> None:
    for key, value in table.items():
        want = types[key]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise SpecError(f"{where}: {key} must be {want.__name__}, got {value!r}")
        if want is float and not math.isfinite(value):  # TOML has nan and inf
            raise SpecError(f"{where}: {key} must be a finite number, got {value!r}")


def spec_from_dict(data: Mapping[str, Any], where: str = "spec") -> VariantSpec:
    """Validate a spec mapping (from TOML or code) and build the frozen spec. The rules run in the
    order a reader meets the fields (name, runtime, keys and types of every table, architecture,
    training, steps and precision, quantization, pruning, origin, text), each group in its checker:
    the first broken rule is the one message."""
    name = data.get("name")
    if not isinstance(name, str) or not name or any(c.isspace() or c in "/,\\" for c in name):
        raise SpecError(f"{where}: name must be a non-empty string without spaces, '/' or ',': {name!r}")
    where = f"{where} ({name})"
    runtime = data.get("runtime", "torch")
    ext = extension(runtime) if isinstance(runtime, str) and runtime not in RUNTIMES else None
    if runtime not in RUNTIMES and ext is None:  # before the keys: a runtime's own table is known by its name
        raise SpecError(f"{where}: runtime must be one of {RUNTIMES + names()}, got {runtime!r}")
    _check_keys(where, data, SPEC_KEYS | ({runtime} if ext else set()))
    t = _typed_tables(where, data, runtime, ext)
    _check_architecture(where, t["architecture"])
    method = _check_train(where, t["train"], t["init"])
    steps, precision = _steps_and_precision(where, data)
    if ext is not None:  # the extension's recipe builds it from its own table alone
        if method != "none" or steps or data.get("base") or data.get("source"):
            raise SpecError(f"{where}: a {runtime!r} variant (a runtime extension) takes no base, source, training "
                            "or steps")
        return VariantSpec(name=name, description=str(data.get("description", "")), runtime=runtime,
                           precision=precision, max_length=int(data.get("max_length", 64)), options=t[runtime])
    _check_steps(where, steps, runtime)
    _check_quantization(where, t["quantize"], t["calibrate"], steps)
    _check_prune(where, t["prune"], data, steps, t["train"])
    _check_nbits(where, t["nbits"], steps, precision, method)
    if any(s.endswith("int8") for s in steps) != (precision == "int8"):
        raise SpecError(f"{where}: precision {precision!r} does not match steps {steps}")
    base, source = _origin(where, data, method)
    max_length, truncation, description = _text_fields(where, data)
    return VariantSpec(
        name=name, description=description, base=base, source=source, architecture=t["architecture"],
        init=t["init"], train=t["train"], steps=tuple(steps), transforms=t["transforms"], runtime=runtime,
        precision=precision, max_length=max_length, truncation=truncation, prune=t["prune"],
        calibrate=t["calibrate"], quantize=t["quantize"], nbits=t["nbits"],
    )


SUBTABLES: dict[str, Mapping[str, type]] = {
    "architecture": ARCH_KEYS, "train": TRAIN_KEYS, "init": INIT_KEYS, "transforms": TRANSFORM_KEYS,
    "prune": PRUNE_KEYS, "calibrate": CALIBRATE_KEYS, "quantize": QUANTIZE_KEYS, "nbits": NBITS_KEYS}


def _typed_tables(where: str, data: Mapping[str, Any], runtime: str, ext: Any) -> dict[str, dict[str, Any]]:
    """Every sub-table (and a runtime extension's own), copied, with known keys of the right types."""
    schema = dict(SUBTABLES) | ({runtime: ext.keys} if ext else {})
    out = {sub: dict(data.get(sub, {})) for sub in schema}
    for sub, types in schema.items():
        _check_keys(f"{where} [{sub}]", out[sub], types)
        _check_types(f"{where} [{sub}]", out[sub], types)
    return out


def _check_architecture(where: str, arch: Mapping[str, Any]) -> None:
    for key, value in arch.items():
        if value <= 0:
            raise SpecError(f"{where} [architecture]: {key} must be positive, got {value}")
        if value > ARCH_MAX[key]:
            raise SpecError(f"{where} [architecture]: {key} must be at most {ARCH_MAX[key]:,} (a model this tool can "
                            f"build on a CPU), got {value:,}")
    if "hidden_size" in arch and "num_attention_heads" in arch and arch["hidden_size"] % arch["num_attention_heads"]:
        raise SpecError(f"{where}: hidden_size {arch['hidden_size']} is not divisible by "
                        f"num_attention_heads {arch['num_attention_heads']}")


def _check_train(where: str, train: Mapping[str, Any], init: Mapping[str, Any]) -> str:
    """The [train] and [init] rules; the training method."""
    method = train.get("method", "none")
    if method not in TRAIN_METHODS:
        raise SpecError(f"{where}: train.method must be one of {TRAIN_METHODS}, got {method!r}")
    if train.get("autocast", "fp32") not in TRAIN_AUTOCAST:
        raise SpecError(f"{where} [train]: autocast must be one of {TRAIN_AUTOCAST}, got {train['autocast']!r}")
    for key in ("epochs", "batch_size"):
        if key in train and train[key] <= 0:
            raise SpecError(f"{where} [train]: {key} must be positive, got {train[key]}")
    _check_train_bounds(f"{where} [train]", train)
    if "stop_after_epochs" in train and not 1 <= train["stop_after_epochs"] <= train.get("epochs", TrainRecipe.epochs):
        raise SpecError(f"{where} [train]: stop_after_epochs must be in 1..epochs (the schedule's length, "
                        f"{train.get('epochs', TrainRecipe.epochs)}), got {train['stop_after_epochs']}")
    for key in ("hidden_weight", "layer_weight"):
        if train.get(key, 0) < 0:
            raise SpecError(f"{where} [train]: {key} is a loss weight, 0 (off) or more, got {train[key]}")
        if train.get(key, 0) and method != "distill":
            raise SpecError(f"{where} [train]: {key} weighs a distillation loss; it needs method = \"distill\"")
    if "width" in init and (init["width"] not in WIDTH_BASES or not init.get("layers")):
        raise SpecError(f"{where} [init]: width (one of {', '.join(WIDTH_BASES)}) says how init.layers map into a "
                        f"narrower student; got {init['width']!r}" + ("" if init.get("layers") else " without init.layers"))
    return str(method)


def _steps_and_precision(where: str, data: Mapping[str, Any]) -> tuple[list[str], str]:
    steps = data.get("steps", [])
    if not isinstance(steps, list) or any(s not in STEPS for s in steps):
        raise SpecError(f"{where}: steps must be a list drawn from {STEPS}, got {steps!r}")
    precision = data.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise SpecError(f"{where}: precision must be one of {PRECISIONS}, got {precision!r}")
    return steps, precision


def _check_steps(where: str, steps: list[str], runtime: str) -> None:
    """Which steps go with which runtime, and in which order."""
    if ("numpy-reference" in steps) != (runtime == "numpy") or (runtime == "numpy" and steps != ["numpy-reference"]):
        raise SpecError(f"{where}: runtime 'numpy' goes with steps = [\"numpy-reference\"] alone, got runtime "
                        f"{runtime!r} and steps {steps}")
    onnx = "export-onnx" in steps
    if onnx != (runtime == "onnxruntime"):
        raise SpecError(f"{where}: runtime {runtime!r} does not match steps {steps} "
                        "(onnxruntime needs an 'export-onnx' step, torch must not have one)")
    if onnx and steps[0] != "export-onnx":
        raise SpecError(f"{where}: 'export-onnx' must be the first step, got {steps}")
    if "onnx-dynamic-int8" in steps and "onnx-static-int8" in steps:
        raise SpecError(f"{where}: choose one of 'onnx-dynamic-int8' and 'onnx-static-int8'")
    if "onnx-fuse" in steps and steps.index("onnx-fuse") != 1:
        raise SpecError(f"{where}: 'onnx-fuse' comes right after 'export-onnx', got {steps}")
    if "onnx-int4-embeddings" in steps and (steps[-1] != "onnx-int4-embeddings" or "onnx-dynamic-int8" not in steps):
        raise SpecError(f"{where}: 'onnx-int4-embeddings' is the last step and follows 'onnx-dynamic-int8', "
                        f"got {steps}")


def _check_quantization(where: str, quantize: Mapping[str, Any], calibrate: Mapping[str, Any],
                        steps: list[str]) -> None:
    """The [quantize] (torch INT8) and [calibrate] (static ONNX INT8) tables."""
    if calibrate and "onnx-static-int8" not in steps:
        raise SpecError(f"{where}: a [calibrate] table goes with the 'onnx-static-int8' step")
    if quantize and "torch-dynamic-int8" not in steps:
        raise SpecError(f"{where}: a [quantize] table goes with the 'torch-dynamic-int8' step")
    if not all(isinstance(p, str) and p for p in quantize.get("keep_fp32", [])):
        raise SpecError(f"{where} [quantize]: keep_fp32 is a list of module-name prefixes, got {quantize['keep_fp32']!r}")
    if "smooth_modules" in quantize and "smooth_alpha" not in quantize:
        raise SpecError(f"{where} [quantize]: smooth_modules needs smooth_alpha")
    try:
        re.compile(quantize.get("smooth_modules", ""))
    except re.error as err:
        raise SpecError(f"{where} [quantize]: smooth_modules is not a regular expression: {err}") from None
    if not 0 < quantize.get("smooth_alpha", 0.5) < 1:
        raise SpecError(f"{where} [quantize]: smooth_alpha is between 0 and 1 (exclusive), got {quantize['smooth_alpha']!r}")
    if calibrate.get("method", "minmax") not in CALIBRATE_METHODS:
        raise SpecError(f"{where} [calibrate]: method must be one of {CALIBRATE_METHODS}, got {calibrate['method']!r}")
    if "texts" in calibrate and calibrate["texts"] <= 0:
        raise SpecError(f"{where} [calibrate]: texts must be positive, got {calibrate['texts']}")


def _origin(where: str, data: Mapping[str, Any], method: str) -> tuple[Any, Any]:
    """(base, source): where the variant's weights come from."""
    base, source = data.get("base"), data.get("source")
    if method == "finetune" and not base:
        raise SpecError(f"{where}: a finetuned variant needs a 'base' (\"minilm\", a directory or hub id)")
    if method in ("distill", "qat") and not source:
        raise SpecError(f"{where}: a distilled variant needs a 'source' (its teacher variant)")
    if method in ("none",) and not base and not source:
        raise SpecError(f"{where}: needs a 'base' or a 'source' variant")
    if base and source:
        raise SpecError(f"{where}: give either 'base' or 'source', not both")
    return base, source


def _text_fields(where: str, data: Mapping[str, Any]) -> tuple[int, str, str]:
    """max_length, truncation, description."""
    max_length = data.get("max_length", 64)
    if not isinstance(max_length, int) or isinstance(max_length, bool) or not 8 <= max_length <= 512:
        raise SpecError(f"{where}: max_length must be an integer in 8..512, got {max_length!r}")
    truncation = data.get("truncation", "right")
    if truncation not in ("right", "head-tail"):
        raise SpecError(f"{where}: truncation must be 'right' or 'head-tail', got {truncation!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{where}: description must be a string")
    return max_length, truncation, description


# What a [train] value can sensibly be: beyond these a build would never end (epochs = 1000000), or
# train nothing (lr = 0), or divide by zero (temperature = 0).
TRAIN_INT_BOUNDS = {"epochs": (1, 1000), "batch_size": (1, 65536), "augment_copies": (0, 100), "max_length": (8, 512)}
TRAIN_FLOAT_BOUNDS: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda v: v > 0, "> 0"), "temperature": (lambda v: v > 0, "> 0"),
    "alpha": (lambda v: 0 <= v <= 1, "in [0, 1]"), "warmup": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
}


def _check_train_bounds(where: str, train: Mapping[str, Any]) -> None:
    for key, (low, high) in TRAIN_INT_BOUNDS.items():
        if key in train and not low <= train[key] <= high:
            raise SpecError(f"{where}: {key} must be in {low}..{high}, got {train[key]}")
    for key, (ok, bound) in TRAIN_FLOAT_BOUNDS.items():
        if key in train and not ok(train[key]):
            raise SpecError(f"{where}: {key} must be {bound}, got {train[key]!r}")


def _check_prune(where: str, prune: Mapping[str, Any], data: Mapping[str, Any], steps: list[str],
                 train: Mapping[str, Any]) -> None:
    if not prune:
        return
    where = f"{where} [prune]"
    if not data.get("source") or steps or data.get("runtime", "torch") != "torch":
        raise SpecError(f"{where}: a pruned variant names its 'source' (the model pruned, also the teacher of "
                        "the recovery distillation), runs on torch and has no steps (derive ONNX etc. from it)")
    if train.get("method", "none") not in ("distill", "none"):
        raise SpecError(f"{where}: recovery is train.method = \"distill\" (or \"none\" for one-shot pruning)")
    for key in ("heads", "ffn", "sparsity"):
        if key in prune and not 0.0 <= prune[key] < 1.0:
            raise SpecError(f"{where}: {key} is a fraction in [0, 1), got {prune[key]}")
    if not any(prune.get(k, 0.0) > 0 for k in ("heads", "ffn", "sparsity")):
        raise SpecError(f"{where}: give at least one of heads, ffn, sparsity > 0")
    if prune.get("scope", "global") not in ("global", "layer"):
        raise SpecError(f"{where}: scope must be 'global' or 'layer', got {prune['scope']!r}")
    if prune.get("rounds", 1) < 1 or prune.get("importance_texts", 1) < 1:
        raise SpecError(f"{where}: rounds and importance_texts must be positive")
    if prune.get("rounds", 1) > 1 and not prune.get("sparsity"):
        raise SpecError(f"{where}: rounds > 1 (progressive pruning) applies to 'sparsity'")


def _check_nbits(where: str, nbits: Mapping[str, Any], steps: list[str], precision: str, method: str) -> None:
    chosen = [s for s in steps if s in NBITS_STEPS]
    if not chosen:
        if nbits:
            raise SpecError(f"{where}: an [nbits] table goes with an 'onnx-int4' or 'onnx-mixed' step")
        if method == "qat":
            raise SpecError(f"{where} [train]: method \"qat\" trains for an 'onnx-int4' step; the steps have none")
        if precision in NBITS_STEPS.values():
            raise SpecError(f"{where}: precision {precision!r} goes with the step "
                            f"{next(s for s, p in NBITS_STEPS.items() if p == precision)!r}")
        return
    step = chosen[0]
    if len(chosen) > 1 or steps[-1] != step or any(s.endswith("int8") or s == "onnx-int4-embeddings" for s in steps):
        raise SpecError(f"{where}: '{step}' is the last step, alone after 'export-onnx' (and 'onnx-fuse'), "
                        f"got {steps}")
    if precision != NBITS_STEPS[step]:
        raise SpecError(f"{where}: the step '{step}' makes precision {NBITS_STEPS[step]!r}, got {precision!r}")
    if method == "qat" and step != "onnx-int4":
        raise SpecError(f"{where} [train]: method \"qat\" trains for the 'onnx-int4' step, not '{step}'")
    if method not in ("none", "qat"):
        raise SpecError(f"{where} [train]: an N-bit step takes method \"qat\" or no training, got {method!r}")
    block = nbits.get("block_size", 32)
    if block < 16 or block & (block - 1) or block > 256:
        raise SpecError(f"{where} [nbits]: block_size is a power of two in 16..256, got {block}")
    if not all(isinstance(p, str) and p for p in nbits.get("keep_fp32", [])):
        raise SpecError(f"{where} [nbits]: keep_fp32 is a list of Linear-name prefixes, got {nbits['keep_fp32']!r}")
    budget = [k for k in ("max_drop", "min_agreement", "top_k") if k in nbits]
    if step == "onnx-int4" and budget:
        raise SpecError(f"{where} [nbits]: {budget[0]} is a mixed-precision budget; it goes with 'onnx-mixed'")
    if step == "onnx-mixed" and (not budget or ("top_k" in budget and len(budget) > 1)):
        raise SpecError(f"{where} [nbits]: 'onnx-mixed' needs a budget: max_drop and/or min_agreement, or top_k")
    if nbits.get("max_drop", 0.0) < 0 or not 0 < nbits.get("min_agreement", 0.5) <= 1 or nbits.get("top_k", 0) < 0:
        raise SpecError(f"{where} [nbits]: max_drop >= 0 (points), min_agreement in (0, 1], top_k >= 0")
