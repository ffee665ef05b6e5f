"""Build variants into cached, atomically published artifact directories with a manifest.

`<cache>/artifacts/<name>-<spec hash[:12]>/` holds everything the variant needs to run (weights,
config, tokenizer) and `manifest.json`. A build happens in a `.partial-*` sibling and is renamed
into place only when complete, so an interrupted build never leaves a directory that looks done;
the next run starts that variant afresh. What is built is the recipe's business
(`slimbench.build.recipes`); this module caches, records, evaluates and publishes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.build.autocast import AUTO
from slimbench.build.context import BuildContext, library_versions
from slimbench.build.eta import BuildEta, estimate
from slimbench.build.families import check as check_families
from slimbench.build.recipes import evaluates, recipe_for
from slimbench.build.recipes.common import truncation_of
from slimbench.build.steps import StepClock, summary
from slimbench.data import size_warnings
from slimbench.errors import BuildError, SlimbenchError
from slimbench.formats.manifest import MANIFEST_SCHEMA, runtime_files
from slimbench.runtimes.runners import MANIFEST, open_runner, predict_in_batches, read_manifest
from slimbench.spec.schema import VariantSpec
from slimbench.stats import macro_f1


def _dir_files(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in runtime_files(directory)}


def _dir_sha256(directory: Path) -> dict[str, str]:
    """sha256 of every file: tells two builds of one spec apart (or proves them identical)."""
    from slimbench.cache.assets import sha256_file

    return {p.name: sha256_file(p) for p in runtime_files(directory)}


def build(ctx: BuildContext, names: Sequence[str], force: bool = False) -> dict[str, Path]:
    """Build the named variants and their sources (cached ones are reused); name -> artifact dir."""
    order = ctx.zoo.build_order(names)
    out: dict[str, Path] = {}
    todo = [s.name for s in order if not ctx.is_built(s.name) or (force and s.name in names)]
    eta = None
    if todo:
        check_families(ctx, todo)  # a recipe the base's architecture cannot take is refused before any work
        for warning in size_warnings(ctx.splits):
            ctx.log(f"warning: {warning}")
        default_data = ctx.splits.name == "movie-snippets" and ctx.base_override is None
        estimates = {n: estimate(ctx.root, n, default_data) for n in todo}
        eta = BuildEta({n: e[0] for n, e in estimates.items()})
        ctx.log(eta.plan_line(len(order) - len(todo), [e[1] for e in estimates.values() if e[0] is not None]))
        if any(ctx.zoo.get(n).train.get("autocast") == AUTO for n in todo):
            ctx.log(f"training steps ([train] autocast = \"auto\"): {ctx.train_autocast().describe()}")
    for k, spec in enumerate(order, start=1):
        target = ctx.artifact_dir(spec.name)
        if spec.name not in todo:
            ctx.log(f"[{k}/{len(order)}] {spec.name}: cached at {target}")
        else:
            with _build_lock(ctx, target, spec.name) as waited:
                if waited and ctx.is_built(spec.name) and not (force and spec.name in names):
                    ctx.log(f"[{k}/{len(order)}] {spec.name}: built by another process meanwhile, at {target}")
                    out[spec.name] = target
                    continue
                ctx.log(f"[{k}/{len(order)}] {spec.name}: building ({spec.description or spec.method})")
                _build_naming_failures(ctx, spec, target)
            m = read_manifest(target)
            acc = m.get("test_accuracy")
            ctx.log(f"[{k}/{len(order)}] {spec.name}: built in {m['build_seconds']:.0f} s, "
                    f"test accuracy {'n/a' if acc is None else f'{acc:.4f}'}, "
                    f"{sum(m['files'].values()) / 1e6:.1f} MB on disk; "
                    + (eta.finished(spec.name, m["build_seconds"]) if eta else ""))
            ctx.log(f"      time per step: {summary(m.get('build_steps_s') or {})}")
        out[spec.name] = target
    return out


def _build_naming_failures(ctx: BuildContext, spec: VariantSpec, target: Path) -> None:
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


@contextlib.contextmanager
def _build_lock(ctx: BuildContext, target: Path, name: str) -> Iterator[bool]:
    """Hold an exclusive lock on building `target`; yields whether another process held it first.

    Two runs asking for the same variant (two terminals, a CI matrix on one cache) build it once:
    the second waits, asleep in flock, not spinning, and then finds it built. Without the lock both
    built every variant side by side, each at half speed on a 2-core machine and fighting for the
    cores with their thread pools (406 s each where one build takes 22 s).
    """
    import fcntl

    ctx.root.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f".{target.name}.lock"), "a+") as lock:
        waited = False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            waited = True
            lock.seek(0)
            ctx.log(f"      {name}: another process ({lock.read().strip() or 'unknown'}) is building it; waiting")
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield waited
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
    ctx.steps = StepClock()
    try:
        import torch

        _quiet_libraries()
        torch.set_num_threads(ctx.threads)
        manifest: dict[str, Any] = {
            "schema": MANIFEST_SCHEMA, "name": spec.name, "description": spec.description,
            "spec": spec.canonical(), "spec_hash": ctx.spec_hash(spec.name), "runtime": spec.runtime,
            "precision": spec.precision, "max_length": spec.max_length, "truncation": truncation_of(ctx, spec),
            "inputs": ctx.inputs(),
            "libraries": library_versions(), "dataset": {
                "name": ctx.splits.name, "labels": list(ctx.splits.labels), "train": len(ctx.splits.train),
                "val": len(ctx.splits.val), "test": len(ctx.splits.test)},
        }
        if ctx.splits.groups is not None:  # a multi-label variant: how its runners decode the logits
            manifest["label_groups"] = ctx.splits.groups.to_json()
        manifest.update(recipe_for(spec)(ctx, spec, tmp))
        test_labels: tuple[list[Any], float] | None = None
        if evaluates(spec):
            with ctx.steps("evaluate"):
                evaluated, test_labels = _evaluate(ctx, tmp, manifest)
            manifest.update(evaluated)
        manifest["files"] = _dir_files(tmp)
        with ctx.steps("sha256"):
            manifest["files_sha256"] = _dir_sha256(tmp)
        manifest["build_seconds"] = time.perf_counter() - start
        manifest["build_steps_s"] = ctx.steps.record(manifest["build_seconds"])
        manifest["built_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if target.exists():  # an incomplete leftover (no manifest): never reuse it
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _remember(ctx, target, manifest, test_labels)


def _remember(ctx: BuildContext, target: Path, manifest: dict[str, Any],
              test_labels: tuple[list[Any], float] | None) -> None:
    """Put into `slimbench.cache.memo` what a later pass would compute again from the published files:
    their gzip sizes, and the test-split labels the evaluation just predicted with the seconds that
    pass took (the public runner, the same batches and sentences as a compare's or a benchmark's
    pass, keyed by this code and the thread count)."""
    from slimbench.cache import memo

    if not memo.in_cache(target):
        return
    measured = {manifest.get("model_file"): (manifest.get("pruning") or {}).get("compressed_bytes")}  # gzip -6
    for path in runtime_files(target):
        memo.gzip_size_memo(path, known=measured.get(path.name))
    if test_labels is not None:  # a multi-label text's labels: its per-group indices (stored as a list)
        key = memo.prediction_key(memo.code_fingerprint(memo.running_code()), target,
                                  [e.text for e in ctx.splits.test], ctx.threads)
        memo.put("predictions", key, test_labels[0])  # stored as JSON: a label tuple reads back as a list
        memo.put("prediction-seconds", key, test_labels[1])


def _group_scores(scores: dict[str, Any], split: str) -> dict[str, Any]:
    """A multi-label split's manifest figures: `accuracy` is the exact match (every group right),
    `macro_f1` the mean of the groups' macro-F1; the per-group figures and micro-F1 beside them."""
    groups = scores["groups"]
    return {f"{split}_accuracy": scores["exact_match"],
            f"{split}_macro_f1": float(np.mean([g["macro_f1"] for g in groups.values()])),
            f"{split}_label_scores": scores}


def _evaluate(ctx: BuildContext, directory: Path,
              manifest: dict[str, Any]) -> tuple[dict[str, Any], tuple[list[int], float]]:
    """Validation and test accuracy through the public runner (test is reported, never selected on),
    and the test split's labels with the seconds their pass took."""
    from slimbench.cache.memo import TEST_SPLIT_BATCH

    (directory / MANIFEST).write_text(json.dumps(manifest))
    runner = open_runner(directory, threads=ctx.threads)
    try:
        out: dict[str, Any] = {}
        pred: list[Any] = []
        seconds = 0.0
        for split in ("val", "test"):
            part = getattr(ctx.splits, split)
            start = time.perf_counter()
            pred = predict_in_batches(runner, [e.text for e in part], TEST_SPLIT_BATCH, desc=f"  evaluating ({split})")
            seconds = time.perf_counter() - start
            if ctx.splits.groups is not None:
                out.update(_group_scores(ctx.splits.groups.scores(pred, [e.groups for e in part]), split))
                continue
            gold = [e.label for e in part]
            out[f"{split}_accuracy"] = float(np.mean(np.asarray(pred) == np.asarray(gold)))
            out[f"{split}_macro_f1"] = macro_f1(pred, gold, ctx.splits.num_labels)
        return out, (pred, seconds)
    finally:
        runner.close()
