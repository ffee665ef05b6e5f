"""Build variants into cached, atomically published artifact directories with a manifest.

`<cache>/artifacts/<name>-<spec hash[:12]>/` holds everything the variant needs to run (weights,
config, tokenizer) and `manifest.json`. A build happens in a `.partial-*` sibling and is renamed
into place only when complete, so an interrupted build never leaves a directory that looks done;
the next run starts that variant afresh.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimbench import __version__
from slimbench.data import Splits, check_trainable, size_warnings
from slimbench.errors import ArtifactError, BuildError, SlimbenchError
from slimbench.measure import macro_f1, runtime_files
from slimbench.runtime import MANIFEST, TOKENIZER_FILE, open_runner, predict_in_batches, read_manifest
from slimbench.zoo import VariantSpec, Zoo

MANIFEST_SCHEMA = 1
EXPORT_TOLERANCE = 1e-3  # max |logit diff| torch fp32 vs ONNX fp32 before a build is refused
CHECK_TEXTS = 256


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "slimbench": __version__}
    for pkg in ("torch", "transformers", "tokenizers", "onnxruntime", "onnx", "onnxscript", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _dir_files(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in runtime_files(directory)}


def _dir_sha256(directory: Path) -> dict[str, str]:
    """sha256 of every file: tells two builds of one spec apart (or proves them identical)."""
    from slimbench.assets import sha256_file

    return {p.name: sha256_file(p) for p in runtime_files(directory)}


@dataclass
class BuildContext:
    """Everything a build needs besides the spec: where to cache, which data, which base models."""

    zoo: Zoo
    root: Path
    splits_loader: Callable[[], Splits]
    transfer_loader: Callable[[], list[str]] = field(default=lambda: [])
    base_resolver: Callable[[str], Path] | None = None
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    log: Callable[[str], None] = print
    base_override: str | None = None  # the user's checkpoint (directory or hub:ID) in place of "minilm"
    _splits: Splits | None = None
    _bases: dict[str, Path] = field(default_factory=dict)
    _fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def splits(self) -> Splits:
        if self._splits is None:
            self._splits = self.splits_loader()
        return self._splits

    def inputs(self) -> dict[str, str]:
        from slimbench.assets import asset_fingerprint

        return {"dataset": self.splits.fingerprint(), **asset_fingerprint()}

    def effective_base(self, base: str) -> str:
        return self.base_override if base == "minilm" and self.base_override else base

    def spec_hash(self, name: str) -> str:
        inputs = self.inputs()
        for spec in self.zoo.ancestors(name):
            base = self.effective_base(spec.base or "")
            if base and base not in ("minilm", RANDOM_BASE):
                if base not in self._fingerprints:
                    from slimbench.build.base_models import fingerprint

                    self._fingerprints[base] = fingerprint(self.resolve_base(spec.base or ""))
                inputs[f"base:{spec.name}"] = self._fingerprints[base]
        return self.zoo.spec_hash(name, inputs)

    def artifact_dir(self, name: str) -> Path:
        return self.root / f"{name}-{self.spec_hash(name)[:12]}"

    def is_built(self, name: str) -> bool:
        return (self.artifact_dir(name) / MANIFEST).is_file()

    def resolve_base(self, base: str) -> Path:
        """The checkpoint directory for a spec's base (the user's override replaces "minilm")."""
        if self.base_resolver is not None:
            return self.base_resolver(base)
        effective = self.effective_base(base)
        if effective not in self._bases:
            from slimbench.build import base_models

            self._bases[effective] = base_models.resolve(effective)
        return self._bases[effective]


RANDOM_BASE = "random"


def build(ctx: BuildContext, names: Sequence[str], force: bool = False) -> dict[str, Path]:
    """Build the named variants and their sources (cached ones are reused); name -> artifact dir."""
    order: list[VariantSpec] = []
    for name in names:
        for spec in ctx.zoo.ancestors(name):
            if spec not in order:
                order.append(spec)
    out: dict[str, Path] = {}
    if any(not ctx.is_built(spec.name) or (force and spec.name in names) for spec in order):
        for warning in size_warnings(ctx.splits):
            ctx.log(f"warning: {warning}")
    for k, spec in enumerate(order, start=1):
        target = ctx.artifact_dir(spec.name)
        if ctx.is_built(spec.name) and not (force and spec.name in names):
            ctx.log(f"[{k}/{len(order)}] {spec.name}: cached at {target}")
        else:
            ctx.log(f"[{k}/{len(order)}] {spec.name}: building ({spec.description or spec.method})")
            try:
                build_one(ctx, spec, target)
            except SlimbenchError:
                raise
            except Exception as err:  # a library failure deep in training or export: name the variant
                if os.environ.get("SLIMBENCH_DEBUG"):
                    raise
                first = (str(err).strip().splitlines() or [""])[0]
                raise BuildError(f"building {spec.name!r} failed: {type(err).__name__}: {first} (nothing was "
                                 "cached; set SLIMBENCH_DEBUG=1 for the traceback)") from err
            m = read_manifest(target)
            acc = m.get("test_accuracy")
            ctx.log(f"[{k}/{len(order)}] {spec.name}: built in {m['build_seconds']:.0f} s, "
                    f"test accuracy {'n/a' if acc is None else f'{acc:.4f}'}, "
                    f"{sum(m['files'].values()) / 1e6:.1f} MB on disk")
        out[spec.name] = target
    return out


def _remove_dead_partials(root: Path) -> None:
    """Delete half-written builds left by killed processes (their pid is in the name)."""
    for path in root.glob(".*.partial-*"):
        pid = path.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _quiet_libraries() -> None:
    """Our own progress bars say what is happening; silence the libraries' per-load chatter."""
    import logging

    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # "Writing model shards" on every save
    except ImportError:
        pass
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization warns through the root logger
    import warnings

    # torch.ao dynamic quantization is deprecated upstream (torchao replaces it) but is what torch 2.13
    # offers without another dependency; its per-call deprecation warnings are noise to a user.
    warnings.filterwarnings("ignore", message=".*quantiz.*", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*", category=DeprecationWarning)


def build_one(ctx: BuildContext, spec: VariantSpec, target: Path) -> None:
    ctx.root.mkdir(parents=True, exist_ok=True)
    _remove_dead_partials(ctx.root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=ctx.root))
    start = time.perf_counter()
    try:
        import torch

        _quiet_libraries()
        torch.set_num_threads(ctx.threads)
        manifest: dict[str, Any] = {
            "schema": MANIFEST_SCHEMA, "name": spec.name, "description": spec.description,
            "spec": spec.canonical(), "spec_hash": ctx.spec_hash(spec.name), "runtime": spec.runtime,
            "precision": spec.precision, "max_length": spec.max_length, "truncation": _truncation(ctx, spec),
            "inputs": ctx.inputs(),
            "libraries": library_versions(), "dataset": {
                "name": ctx.splits.name, "labels": list(ctx.splits.labels), "train": len(ctx.splits.train),
                "val": len(ctx.splits.val), "test": len(ctx.splits.test)},
        }
        if spec.runtime == "calibration":
            manifest.update(_calibration(spec, tmp))
        elif spec.base == RANDOM_BASE and spec.method == "none":
            manifest.update(_random_init(ctx, spec, tmp))
        elif spec.prune:
            manifest.update(_prune(ctx, spec, tmp))
        elif spec.method == "finetune":
            manifest.update(_finetune(ctx, spec, tmp))
        elif spec.method == "distill":
            manifest.update(_distill(ctx, spec, tmp))
        elif spec.source:
            manifest.update(_derive(ctx, spec, tmp))
        else:
            raise BuildError(f"{spec.name}: nothing to build (no training method and no source)")
        if spec.runtime != "calibration":  # calibration variants may be built to crash or hang
            manifest.update(_evaluate(ctx, tmp, manifest))
        manifest["files"] = _dir_files(tmp)
        manifest["files_sha256"] = _dir_sha256(tmp)
        manifest["build_seconds"] = time.perf_counter() - start
        manifest["built_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if target.exists():  # an incomplete leftover (no manifest): never reuse it
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _evaluate(ctx: BuildContext, directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Validation and test accuracy through the public runner (test is reported, never selected on)."""
    (directory / MANIFEST).write_text(json.dumps(manifest))
    runner = open_runner(directory, threads=ctx.threads)
    try:
        out: dict[str, Any] = {}
        for split in ("val", "test"):
            part = getattr(ctx.splits, split)
            pred = predict_in_batches(runner, [e.text for e in part])
            gold = [e.label for e in part]
            out[f"{split}_accuracy"] = float(np.mean(np.asarray(pred) == np.asarray(gold)))
            out[f"{split}_macro_f1"] = macro_f1(pred, gold, ctx.splits.num_labels)
        return out
    finally:
        runner.close()


def _load_tokenizer(directory: Path) -> Any:
    from tokenizers import Tokenizer

    path = directory / TOKENIZER_FILE
    if not path.is_file():
        raise BuildError(f"{directory} has no {TOKENIZER_FILE}; a fast (Rust) tokenizer file is required")
    return Tokenizer.from_file(str(path))


def _count_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _finetune(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """Fine-tune the base on the training split -- or, when the base already is a classifier for
    these labels (the user's own fine-tuned checkpoint), take it as it is."""
    import torch
    from safetensors import SafetensorError
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification

    from slimbench.build.base_models import classification_head, tokenizer_json
    from slimbench.build.train import encode_all, finetune
    from slimbench.torch_io import load_hf, save_hf

    base = ctx.resolve_base(str(spec.base))
    splits = ctx.splits
    tok_json = tokenizer_json(base)
    record: dict[str, Any] = {"format": "hf", "model_file": "model.safetensors",
                              "base": ctx.effective_base(str(spec.base))}
    if ctx.effective_base(str(spec.base)) != "minilm" and classification_head(base, splits.num_labels):
        ctx.log(f"  {base} already has a {splits.num_labels}-class head: used as it is, no training")
        model = load_hf(base, user_checkpoint=True)
        record["training"] = None
        record["used_as_is"] = True
    else:
        _check_training_rows(ctx, spec, "fine-tuning")
        torch.manual_seed(int(spec.train.get("seed", 0)))
        try:
            # ignore_mismatched_sizes lets a head of another label count be replaced; any other
            # mismatch means config.json does not describe these weights, which we refuse below.
            model, info = AutoModelForSequenceClassification.from_pretrained(
                base, num_labels=splits.num_labels, id2label=dict(enumerate(splits.labels)),
                label2id={n: i for i, n in enumerate(splits.labels)}, local_files_only=True,
                ignore_mismatched_sizes=True, output_loading_info=True, use_safetensors=True)
        except (OSError, ValueError, RuntimeError, SafetensorError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise BuildError(f"cannot load base model {base}: {first} -- the weights are corrupt, truncated "
                             "or do not match config.json") from None
        head = ("classifier", "pooler", "pre_classifier", "score")
        bad = [str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", [])]
        bad += [str(k) for k in info.get("missing_keys", [])]
        bad = [k for k in bad if not any(part in k for part in head)]
        if bad:
            raise BuildError(f"the weights in {base} do not match its config.json ({len(bad)} tensors, e.g. "
                             f"{bad[0]}); fix config.json or re-save the checkpoint")
        try:
            tok = Tokenizer.from_str(tok_json)
        except Exception as err:  # tokenizers raises a bare Exception on malformed JSON
            raise BuildError(f"cannot load the tokenizer of {base}: {err}") from None
        train_seqs = encode_all(tok, [e.text for e in splits.train], spec.max_length)
        val_seqs = encode_all(tok, [e.text for e in splits.val], spec.max_length)
        result = finetune(model, train_seqs, [e.label for e in splits.train], val_seqs,
                          [e.label for e in splits.val], spec.train, desc=f"{spec.name} finetune")
        record["training"] = _training_record(result)
    save_hf(model, out)
    (out / TOKENIZER_FILE).write_text(tok_json, encoding="utf-8")
    record["parameters"] = _count_parameters(model)
    return record


def _random_init(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """Seed 000's idea: a model defined only by its architecture, randomly initialised -- for size,
    load, latency and memory studies before any training exists. Its accuracy is chance."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from slimbench.build.base_models import tokenizer_json
    from slimbench.torch_io import save_hf

    reference = ctx.resolve_base("minilm")  # its tokenizer and its config's defaults
    config = AutoConfig.from_pretrained(reference, local_files_only=True)
    for key, value in spec.architecture.items():
        setattr(config, key, value)
    config.num_labels = ctx.splits.num_labels
    config.id2label = dict(enumerate(ctx.splits.labels))
    config.label2id = {n: i for i, n in enumerate(ctx.splits.labels)}
    torch.manual_seed(int(spec.train.get("seed", 0)))
    model = AutoModelForSequenceClassification.from_config(config)
    save_hf(model, out)
    (out / TOKENIZER_FILE).write_text(tokenizer_json(reference), encoding="utf-8")
    return {"format": "hf", "model_file": "model.safetensors", "parameters": _count_parameters(model),
            "base": RANDOM_BASE, "untrained": True, "training": None}


def _calibration(spec: VariantSpec, out: Path) -> dict[str, Any]:
    """A variant with known costs (see runtime.CalibrationRunner): proves the probes measure truly.

    `padding_bytes` writes a weights file of exactly that many (incompressible) bytes.
    """
    from slimbench.testing import write_tiny_tokenizer

    write_tiny_tokenizer(out / TOKENIZER_FILE)
    cal = dict(spec.calibration)
    weights = out / "weights.bin"
    weights.write_bytes(np.random.default_rng(0).bytes(int(cal.get("padding_bytes", 0))))
    return {"format": "calibration", "model_file": weights.name, "calibration": cal, "parameters": 0}


CALIBRATION_BATCH = 32


def _check_training_rows(ctx: BuildContext, spec: VariantSpec, what: str) -> None:
    """Refuse a recipe the training split is too small for, naming the numbers (see data.check_trainable)."""
    check_trainable(ctx.splits, int(spec.train.get("batch_size", 32)), f"{spec.name} ({what})")


def _training_record(result: Any) -> dict[str, Any]:
    return {"best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy,
            "history": result.history, "seconds": result.seconds, "steps": result.steps}


def _teacher_outputs(ctx: BuildContext, teacher_dir: Path, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Teacher logits and last-layer [CLS] states for `texts`, computed once and cached on disk
    by teacher hash and text hash (students of the same teacher share them)."""
    from slimbench.build.train import encode_all, predict_logits_and_cls
    from slimbench.torch_io import load_hf

    m = read_manifest(teacher_dir)
    key = hashlib.sha256(("\n".join(texts)).encode()).hexdigest()[:16]
    cache = ctx.root / ".teacher-outputs" / f"{m['spec_hash'][:12]}-{key}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return data["logits"], data["cls"]
    teacher = load_hf(teacher_dir)
    seqs = encode_all(_load_tokenizer(teacher_dir), texts, int(m["max_length"]))
    ctx.log(f"  computing teacher outputs for {len(texts)} texts (cached for later students)")
    logits, cls = predict_logits_and_cls(teacher, seqs, batch_size=64)
    assert cls is not None
    cache.parent.mkdir(parents=True, exist_ok=True)
    part = cache.with_name(f".{cache.stem}.partial-{os.getpid()}.npz")
    np.savez(part, logits=logits, cls=cls)
    os.replace(part, cache)
    return logits, cls


def _distill(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from slimbench.build.compress import pca_projection, trim_vocabulary
    from slimbench.build.train import augment, distill, encode_all
    from slimbench.torch_io import load_hf, save_hf

    teacher_dir = ctx.artifact_dir(str(spec.source))
    tm = read_manifest(teacher_dir)
    if tm.get("format") != "hf":
        raise BuildError(f"{spec.name}: teacher {spec.source!r} must be a torch fp32 variant, not {tm.get('format')}")
    _check_training_rows(ctx, spec, "distillation")
    splits = ctx.splits
    train_texts = [e.text for e in splits.train]
    transfer = list(ctx.transfer_loader()) if spec.train.get("transfer_data") else []
    copies = int(spec.train.get("augment_copies", 0))
    augmented = augment(train_texts, copies, seed=int(spec.train.get("seed", 0))) if copies else []
    texts = train_texts + transfer + augmented
    labels = [e.label for e in splits.train] + [-1] * (len(transfer) + len(augmented))
    teacher_logits, teacher_cls = _teacher_outputs(ctx, teacher_dir, texts)

    teacher_tok_json = json.loads((teacher_dir / TOKENIZER_FILE).read_text())
    teacher_tok = Tokenizer.from_str(json.dumps(teacher_tok_json))
    teacher = load_hf(teacher_dir)
    t_emb = teacher.base_model.embeddings
    kept: list[int] | None = None
    if spec.transforms.get("trim_vocab"):
        used = {i for seq in encode_all(teacher_tok, train_texts, 512) for i in seq}
        student_tok_json, kept = trim_vocabulary(teacher_tok_json, used)
        ctx.log(f"  vocabulary trimmed to {len(kept)} of {len(teacher_tok_json['model']['vocab'])} tokens")
    else:
        student_tok_json = teacher_tok_json
    student_tok = Tokenizer.from_str(json.dumps(student_tok_json))

    config = AutoConfig.from_pretrained(teacher_dir, local_files_only=True)
    for key, value in spec.architecture.items():
        setattr(config, key, value)
    if kept is not None:
        config.vocab_size = len(kept)
    torch.manual_seed(int(spec.train.get("seed", 0)))
    student = AutoModelForSequenceClassification.from_config(config)
    s_emb = student.base_model.embeddings
    with torch.no_grad():
        rows = torch.tensor(kept) if kept is not None else torch.arange(config.vocab_size)
        word = t_emb.word_embeddings.weight[rows]
        npos = s_emb.position_embeddings.weight.shape[0]
        how = spec.init.get("embeddings", "copy" if config.hidden_size == teacher.config.hidden_size else "random")
        if how == "copy":
            s_emb.word_embeddings.weight.copy_(word)
            s_emb.position_embeddings.weight.copy_(t_emb.position_embeddings.weight[:npos])
            s_emb.token_type_embeddings.weight.copy_(t_emb.token_type_embeddings.weight)
            s_emb.LayerNorm.load_state_dict(t_emb.LayerNorm.state_dict())
        elif how == "pca":
            _, comps = pca_projection(word.numpy(), config.hidden_size)
            proj = torch.zeros(word.shape[1], config.hidden_size)  # [teacher hidden, student hidden]
            proj[:, : comps.shape[0]] = torch.from_numpy(comps.T.copy())  # zero-padded if the student is wider
            s_emb.word_embeddings.weight.copy_(word @ proj)
            s_emb.position_embeddings.weight.copy_(t_emb.position_embeddings.weight[:npos] @ proj)
            s_emb.token_type_embeddings.weight.copy_(t_emb.token_type_embeddings.weight @ proj)
        elif how != "random":
            raise BuildError(f"{spec.name}: init.embeddings must be copy, pca or random, got {how!r}")
        layers = spec.init.get("layers")
        if layers:
            if config.hidden_size != teacher.config.hidden_size:
                raise BuildError(f"{spec.name}: init.layers needs the teacher's hidden size")
            for k, i in enumerate(layers):
                student.base_model.encoder.layer[k].load_state_dict(teacher.base_model.encoder.layer[i].state_dict())
            if getattr(teacher.base_model, "pooler", None) is not None:
                student.base_model.pooler.load_state_dict(teacher.base_model.pooler.state_dict())
            student.classifier.load_state_dict(teacher.classifier.state_dict())
    del teacher
    seqs = encode_all(student_tok, texts, spec.max_length, spec.truncation)
    val_seqs = encode_all(student_tok, [e.text for e in splits.val], spec.max_length, spec.truncation)
    result = distill(student, seqs, teacher_logits, labels, val_seqs, [e.label for e in splits.val],
                     spec.train, desc=f"{spec.name} distill", teacher_cls=teacher_cls)
    save_hf(student, out)
    (out / TOKENIZER_FILE).write_text(json.dumps(student_tok_json, ensure_ascii=False))
    return {"format": "hf", "model_file": "model.safetensors", "parameters": _count_parameters(student),
            "teacher": spec.source, "transfer_texts": len(transfer), "augmented_texts": len(augmented),
            "vocab_size": config.vocab_size, "training": _training_record(result)}


FP32_TORCH_FORMATS = ("hf", "hf-pruned")
NUMPY_TOLERANCE = 1e-4  # max |logit diff| torch fp32 vs the NumPy reference runtime, on the whole test split


def _derive(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """Post-training steps on the source variant: torch INT8, ONNX export, ORT dynamic or static INT8,
    the NumPy reference runtime."""
    from slimbench.torch_io import load_torch_model, quantize_dynamic_int8, save_int8

    src_dir = ctx.artifact_dir(str(spec.source))
    sm = read_manifest(src_dir)
    if sm.get("format") not in FP32_TORCH_FORMATS:
        raise BuildError(f"{spec.name}: source {spec.source!r} must be a torch fp32 variant")
    shutil.copyfile(src_dir / TOKENIZER_FILE, out / TOKENIZER_FILE)
    record: dict[str, Any] = {"parameters": sm["parameters"], "source_variant": spec.source, "checks": {}}
    if spec.steps == ("numpy-reference",):
        return {**record, **_numpy_reference(ctx, spec, src_dir, out)}
    model = load_torch_model(src_dir, sm["format"]).eval()
    check_texts = [e.text for e in ctx.splits.val[:CHECK_TEXTS]]
    reference = _logits_of(src_dir, check_texts, ctx.threads)
    if spec.steps == ("torch-dynamic-int8",):
        if sm["format"] != "hf":
            raise BuildError(f"{spec.name}: torch dynamic INT8 needs a plain (unpruned) fp32 source")
        save_int8(quantize_dynamic_int8(model), model.config, out)
        record.update(format="torch-int8", model_file="model.int8.safetensors")
    elif spec.steps and spec.steps[0] == "export-onnx":
        from slimbench.build.export import export_onnx

        export_onnx(model, out / "model.onnx", spec.max_length, model.config.vocab_size)
        record.update(format="onnx", model_file="model.onnx")
        _write_probe_manifest(ctx, out, spec, record)
        diff = float(np.abs(_logits_of(out, check_texts, ctx.threads) - reference).max())
        record["checks"]["export_max_abs_logit_diff"] = diff
        if diff > EXPORT_TOLERANCE:
            raise BuildError(f"{spec.name}: ONNX export disagrees with torch (max |Δlogit| {diff:.2e} > "
                             f"{EXPORT_TOLERANCE:g}); refusing to publish it")
        if "onnx-dynamic-int8" in spec.steps or "onnx-static-int8" in spec.steps:
            from slimbench.build.compress import onnx_dynamic_int8, onnx_static_int8

            fp32 = out / "model.fp32.onnx"
            os.replace(out / "model.onnx", fp32)
            if "onnx-dynamic-int8" in spec.steps:
                onnx_dynamic_int8(fp32, out / "model.onnx")
            else:
                feeds, n = _calibration_feeds(ctx, spec, out)
                method = str(spec.calibrate.get("method", "minmax"))
                ctx.log(f"  static INT8: calibrating activation ranges ({method}) on {n} training texts")
                onnx_static_int8(fp32, out / "model.onnx", feeds, method)
                record["calibration"] = {"texts": n, "method": method, "split": "train"}
            fp32.unlink()
    else:
        raise BuildError(f"{spec.name}: unsupported steps {spec.steps}")
    _write_probe_manifest(ctx, out, spec, record)
    q = _logits_of(out, check_texts, ctx.threads)
    record["checks"]["max_abs_logit_diff_vs_source"] = float(np.abs(q - reference).max())
    record["checks"]["agreement_vs_source"] = float((q.argmax(-1) == reference.argmax(-1)).mean())
    record["checks"]["n"] = len(check_texts)
    return record


def _calibration_feeds(ctx: BuildContext, spec: VariantSpec, out: Path) -> tuple[list[dict[str, np.ndarray]], int]:
    """Batches of training texts, encoded exactly as the runtime will (the variant's own Encoder)."""
    from slimbench.runtime import Encoder

    n = min(int(spec.calibrate.get("texts", 512)), len(ctx.splits.train))
    if n < min(CALIBRATION_BATCH, int(spec.calibrate.get("texts", 512))):
        raise BuildError(f"{spec.name}: static INT8 calibration needs at least {CALIBRATION_BATCH} training texts, "
                         f"the training split has {len(ctx.splits.train)}; give a larger dataset")
    pick = np.random.default_rng(0).choice(len(ctx.splits.train), size=n, replace=False)
    texts = sorted((ctx.splits.train[int(i)].text for i in pick), key=len)
    encoder = Encoder(out / TOKENIZER_FILE, spec.max_length, _truncation(ctx, spec))
    # The histogram calibrators (percentile, entropy) stack every batch's tensors, so they need one
    # shape: pad those batches to max_length. MinMax takes each batch as it comes.
    fixed = spec.calibrate.get("method", "minmax") != "minmax"
    feeds = []
    for start in range(0, n, CALIBRATION_BATCH):
        ids, mask = encoder(texts[start : start + CALIBRATION_BATCH])
        if fixed:
            width = ((0, 0), (0, spec.max_length - ids.shape[1]))
            ids, mask = np.pad(ids, width, constant_values=encoder.pad_id), np.pad(mask, width)
        feeds.append({"input_ids": ids, "attention_mask": mask})
    return feeds, n


def _numpy_reference(ctx: BuildContext, spec: VariantSpec, src_dir: Path, out: Path) -> dict[str, Any]:
    """The source's fp32 weights, unchanged, for the NumPy runtime -- checked against torch on the
    whole test split."""
    for name in ("config.json", "model.safetensors"):
        if not (src_dir / name).is_file():
            raise BuildError(f"{spec.name}: source {spec.source!r} has no {name}; the NumPy runtime reads "
                             "Hugging Face safetensors checkpoints")
        shutil.copyfile(src_dir / name, out / name)
    record: dict[str, Any] = {"format": "numpy-bert", "model_file": "model.safetensors", "checks": {}}
    _write_probe_manifest(ctx, out, spec, record)
    texts = [e.text for e in ctx.splits.test]
    diff = float(np.abs(_logits_of(out, texts, ctx.threads) - _logits_of(src_dir, texts, ctx.threads)).max())
    record["checks"].update(max_abs_logit_diff_vs_source=diff, n=len(texts), split="test")
    if diff > NUMPY_TOLERANCE:
        raise BuildError(f"{spec.name}: the NumPy runtime disagrees with torch (max |Δlogit| {diff:.2e} > "
                         f"{NUMPY_TOLERANCE:g} on the test split); refusing to publish it")
    return record


def _prune(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """Prune the source (structured: heads and FFN neurons removed physically; unstructured:
    magnitude, progressively over `rounds`), each stage followed by recovery distillation from the
    source when train.method is "distill"."""
    import torch

    from slimbench.build import prune as P
    from slimbench.build.train import accuracy, collate, distill, encode_all, predict_logits
    from slimbench.torch_io import load_hf, save_hf

    src_dir = ctx.artifact_dir(str(spec.source))
    sm = read_manifest(src_dir)
    if sm.get("format") != "hf":
        raise BuildError(f"{spec.name}: source {spec.source!r} must be a plain torch fp32 variant")
    cfg = spec.prune
    if spec.method == "distill" or cfg.get("heads", 0.0) > 0 or cfg.get("ffn", 0.0) > 0:
        _check_training_rows(ctx, spec, "pruning (importance scoring and recovery)")
    shutil.copyfile(src_dir / TOKENIZER_FILE, out / TOKENIZER_FILE)
    tok = _load_tokenizer(src_dir)
    splits = ctx.splits
    train_texts = [e.text for e in splits.train]
    train_labels = [e.label for e in splits.train]
    seqs = encode_all(tok, train_texts, spec.max_length, spec.truncation)
    val_seqs = encode_all(tok, [e.text for e in splits.val], spec.max_length, spec.truncation)
    val_labels = [e.label for e in splits.val]
    model = load_hf(src_dir).eval()
    params_before = _count_parameters(model)
    recover = spec.method == "distill"
    teacher_logits = _teacher_outputs(ctx, src_dir, train_texts)[0] if recover else None
    stages: list[dict[str, Any]] = []

    def val_accuracy() -> float:
        return accuracy(predict_logits(model, val_seqs), val_labels)

    def recover_stage(stage: dict[str, Any], label: str) -> None:
        """Distil the pruned model from its source (when the recipe says so) and record the stage."""
        stage["recovery"] = None
        if recover:
            assert teacher_logits is not None
            result = distill(model, seqs, teacher_logits, train_labels, val_seqs, val_labels, spec.train,
                             desc=f"{spec.name} {label}")
            stage["recovery"] = _training_record(result)
        stage["val_accuracy"] = val_accuracy()
        stages.append(stage)

    structured = cfg.get("heads", 0.0) > 0 or cfg.get("ffn", 0.0) > 0
    if structured:
        n = min(int(cfg.get("importance_texts", 2048)), len(seqs))
        pick = np.random.default_rng(int(spec.train.get("seed", 0))).choice(len(seqs), size=n, replace=False)
        batches = []
        for start in range(0, n, 32):
            idx = pick[start : start + 32]
            ids, mask = collate(seqs, idx)
            batches.append({"input_ids": ids, "attention_mask": mask,
                            "labels": torch.tensor([train_labels[i] for i in idx])})

        def loss_fn(logits: Any, batch: dict[str, Any]) -> Any:
            return torch.nn.functional.cross_entropy(logits, batch["labels"])

        ctx.log(f"  scoring heads and FFN neurons on {n} training texts (Michel et al. 2019 gradient importance)")
        if cfg.get("heads", 0.0) > 0:
            keep = P.select_heads(P.head_importance(model, batches, loss_fn), float(cfg["heads"]))
            P.prune_heads(model, keep)
        if cfg.get("ffn", 0.0) > 0:
            keep = P.select_neurons(P.ffn_importance(model, batches, loss_fn), float(cfg["ffn"]))
            P.prune_ffn(model, keep)
        stage = {"stage": "structured", "structure": P.structure_of(model), "val_accuracy_pruned": val_accuracy()}
        ctx.log(f"  structured pruning: {params_before:,} -> {_count_parameters(model):,} parameters, "
                f"val accuracy before recovery {stage['val_accuracy_pruned']:.4f}")
        recover_stage(stage, "recover")
    if cfg.get("sparsity", 0.0) > 0:
        scope = str(cfg.get("scope", "global"))
        for k, target in enumerate(P.sparsity_schedule(float(cfg["sparsity"]), int(cfg.get("rounds", 1))), 1):
            P.magnitude_prune(model, target, scope)
            stage = {"stage": f"magnitude {k}", "target_sparsity": target, "scope": scope,
                     "val_accuracy_pruned": val_accuracy()}
            ctx.log(f"  magnitude pruning round {k}: {target:.0%} of encoder weights zeroed, val accuracy "
                    f"before recovery {stage['val_accuracy_pruned']:.4f}")
            recover_stage(stage, f"recover {k}")
        P.make_permanent(model)
    record: dict[str, Any] = {"model_file": "model.safetensors", "source_variant": spec.source,
                              "teacher": spec.source if recover else None, "training": None}
    if structured:
        P.save_pruned(model, out)
        record["format"] = "hf-pruned"
    else:
        save_hf(model, out)
        record["format"] = "hf"
    stats = P.sparsity_stats(model)
    record["parameters"] = _count_parameters(model)
    record["pruning"] = {"config": dict(cfg), "parameters_before": params_before, "stages": stages,
                         "sparsity": stats, "compressed_bytes": P.compressed_size(out / "model.safetensors")}
    return record


def _truncation(ctx: BuildContext, spec: VariantSpec) -> str:
    """A post-training step keeps its source's truncation: the model was trained with it."""
    while spec.steps and spec.source:
        spec = ctx.zoo.get(spec.source)
    return spec.truncation


def _write_probe_manifest(ctx: BuildContext, directory: Path, spec: VariantSpec, record: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps({"format": record["format"], "model_file": record["model_file"],
                                                  "max_length": spec.max_length,
                                                  "truncation": _truncation(ctx, spec)}))


def _logits_of(directory: Path, texts: Sequence[str], threads: int) -> np.ndarray:
    runner = open_runner(directory, threads=threads)
    try:
        return np.concatenate([runner.predict_logits(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    finally:
        runner.close()


def find_artifact(ctx: BuildContext, name: str) -> Path:
    """The built artifact of `name`, or a clear error saying how to build it."""
    ctx.zoo.get(name)
    target = ctx.artifact_dir(name)
    if not (target / MANIFEST).is_file():
        raise ArtifactError(f"variant {name!r} is not built (expected {target}); run `slimbench build --variants {name}`")
    return target


def default_context(zoo: Zoo | None = None, root: Path | None = None, threads: int | None = None,
                    log: Callable[[str], None] = print, dataset: str = "movie-snippets",
                    base: str | None = None, text_column: str = "text", label_column: str = "label",
                    test_file: Path | None = None) -> BuildContext:
    """The default pipeline: pinned MiniLM and, unless another dataset is named, the movie snippets
    (the other Hutto & Gilbert snippet files serve as unlabelled distillation transfer data)."""
    from slimbench.data import load_dataset, transfer_texts
    from slimbench.paths import artifacts_dir

    return BuildContext(
        zoo=zoo or Zoo.load(), root=root or artifacts_dir(),
        splits_loader=lambda: load_dataset(dataset, text_column, label_column, test_file),
        transfer_loader=lambda: transfer_texts(dataset),
        threads=threads or os.cpu_count() or 1, log=log, base_override=base,
    )
