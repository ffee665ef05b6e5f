from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from slimbench.build import recipes
from slimbench.build.builder import build, find_artifact
from slimbench.build.compress import pca_projection, trim_vocabulary
from slimbench.errors import ArtifactError, BuildError
from slimbench.runtimes.runners import open_runner, read_manifest


def test_every_tiny_variant_builds_with_a_complete_manifest(tiny_built, tiny_ctx):
    assert list(tiny_built) == ["standard", "light", "ultra-light", "quantized", "onnx", "onnx-int8"]
    for name, path in tiny_built.items():
        m = read_manifest(path)
        assert path.name == f"{name}-{m['spec_hash'][:12]}"
        assert m["spec_hash"] == tiny_ctx.spec_hash(name)
        assert m["name"] == name and m["schema"] == 1
        assert set(m["libraries"]) >= {"torch", "transformers", "onnxruntime", "python"}
        assert m["files"] and all((path / f).stat().st_size == size for f, size in m["files"].items())
        assert set(m["files_sha256"]) == set(m["files"])
        assert all(hashlib.sha256((path / f).read_bytes()).hexdigest() == h for f, h in m["files_sha256"].items())
        assert m["parameters"] > 0 and m["build_seconds"] > 0
        assert 0.9 <= m["test_accuracy"] <= 1.0, name  # the synthetic task is easy
        assert m["dataset"]["test"] == len(tiny_ctx.splits.test)
    std = read_manifest(tiny_built["standard"])
    assert std["training"]["best_epoch"] >= 1 and len(std["training"]["history"]) == 3
    assert read_manifest(tiny_built["light"])["parameters"] < std["parameters"]


def test_each_manifest_says_where_its_build_time_went(tiny_built):
    expected = {"standard": {"train", "save", "evaluate", "sha256"},
                # (its "teacher pass" is absent when another student of standard computed it first)
                "light": {"init student", "train", "save", "evaluate"},
                "quantized": {"check", "quantize", "evaluate"},
                "onnx": {"onnx export", "check", "evaluate"},
                "onnx-int8": {"onnx export", "quantize", "check", "evaluate"}}
    for name, steps in expected.items():
        m = read_manifest(tiny_built[name])
        record = m["build_steps_s"]
        assert steps <= set(record) and "other" in record, (name, record)
        assert all(s >= 0 for s in record.values())
        # the steps and `other` partition the build's time (each rounded to 0.1 s)
        assert sum(record.values()) == pytest.approx(m["build_seconds"], abs=0.05 * len(record) + 0.05), name


def test_step_clock_sums_repeats_and_counts_nested_steps_once():
    from slimbench.build.steps import StepClock, summary

    clock = StepClock()
    for _ in range(2):
        with clock("train"), clock("evaluate"):  # inside "train": already counted there
            pass
    assert set(clock.seconds) == {"train"}
    record = clock.record(total=clock.seconds["train"] + 3.0)
    assert record["other"] == pytest.approx(3.0, abs=0.1)
    assert clock.record(total=0.0)["other"] == 0.0  # never negative
    assert summary({"train": 754.2, "evaluate": 22.0, "save": 0.1}) == "train 754 s, evaluate 22 s"
    assert summary({"save": 0.1}) == "all steps under 1 s"


def test_onnx_export_agrees_with_torch(tiny_built):
    checks = read_manifest(tiny_built["onnx"])["checks"]
    assert checks["export_max_abs_logit_diff"] < 1e-4 and checks["agreement_vs_source"] == 1.0
    q = read_manifest(tiny_built["onnx-int8"])["checks"]
    assert q["max_abs_logit_diff_vs_source"] < 0.1 and q["agreement_vs_source"] >= 0.95
    assert read_manifest(tiny_built["quantized"])["checks"]["agreement_vs_source"] >= 0.95


def test_int8_artifacts_are_smaller(tiny_built):
    size = {n: sum(read_manifest(p)["files"].values()) for n, p in tiny_built.items()}
    assert size["onnx-int8"] < size["onnx"]
    w = {n: (p / read_manifest(p)["model_file"]).stat().st_size for n, p in tiny_built.items()}
    assert w["quantized"] < w["standard"]


def test_second_build_is_cached(tiny_ctx, tiny_built):
    before = {n: os.stat(p / "manifest.json").st_mtime_ns for n, p in tiny_built.items()}
    logs: list[str] = []
    tiny_ctx.log = logs.append
    try:
        again = build(tiny_ctx, list(tiny_built))
    finally:
        tiny_ctx.log = lambda s: None
    assert again == tiny_built
    assert all("cached" in line for line in logs)
    assert before == {n: os.stat(p / "manifest.json").st_mtime_ns for n, p in tiny_built.items()}


@pytest.mark.slow
def test_rebuild_gives_the_same_predictions(tiny_zoo, tiny_built, tmp_path, context_for):
    ctx = context_for(tiny_zoo, tmp_path)
    fresh = build(ctx, ["standard"])["standard"]
    texts = [e.text for e in ctx.splits.test]
    with open_runner(fresh) as a, open_runner(tiny_built["standard"]) as b:
        np.testing.assert_allclose(a.predict_logits(texts), b.predict_logits(texts), atol=1e-5)


@pytest.mark.slow
def test_a_build_in_the_cache_remembers_its_test_labels_and_gzip_sizes(tiny_zoo, tmp_path, monkeypatch, context_for):
    """The evaluation's test-split labels go to `slimbench.cache.memo` under the key a compare computes for
    the same artifact and code; they are the labels a fresh runner predicts."""
    from slimbench.cache import memo
    from slimbench.measure import runtime_files
    from slimbench.runtimes.runners import predict_in_batches

    monkeypatch.setenv("SLIMBENCH_CACHE", str(tmp_path / "cache"))
    ctx = context_for(tiny_zoo, tmp_path / "cache" / "artifacts")
    target = build(ctx, ["standard"])["standard"]
    texts = [e.text for e in ctx.splits.test]
    key = memo.prediction_key(memo.code_fingerprint(memo.running_code()), target, texts, ctx.threads)
    labels = memo.get("predictions", key)
    # the pass's seconds too: a benchmark run that finds both reads them instead of predicting again
    seconds = memo.get("prediction-seconds", key)
    assert isinstance(seconds, float) and 0 < seconds <= read_manifest(target)["build_steps_s"]["evaluate"] + 0.05
    with open_runner(target, threads=ctx.threads) as runner:
        assert labels == predict_in_batches(runner, texts, memo.TEST_SPLIT_BATCH)
    accuracy = np.mean(np.asarray(labels) == np.asarray([e.label for e in ctx.splits.test]))
    assert accuracy == pytest.approx(read_manifest(target)["test_accuracy"])
    monkeypatch.setattr(memo, "gzip_size", lambda *a: pytest.fail("not remembered"))
    assert all(memo.gzip_size_memo(p) > 0 for p in runtime_files(target))


def test_interrupted_build_leaves_nothing_that_looks_done(tiny_zoo, tmp_path, monkeypatch, context_for):
    ctx = context_for(tiny_zoo, tmp_path)

    def boom(ctx, spec, out):
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setitem(recipes.RECIPES, "finetune", boom)
    with pytest.raises(KeyboardInterrupt):
        build(ctx, ["standard"])
    # the partial directory was discarded; the build lock (an empty-looking .lock file) is not an artifact
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == []
    assert not ctx.is_built("standard")
    with pytest.raises(ArtifactError, match="variant 'standard' is not built .* run `slimbench build --variants standard`"):
        find_artifact(ctx, "standard")


@pytest.mark.slow
def test_leftovers_of_a_killed_build_are_ignored_and_cleaned(tiny_zoo, tmp_path, context_for):
    ctx = context_for(tiny_zoo, tmp_path)
    target = ctx.artifact_dir("standard")
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"half")  # a directory without manifest
    dead = tmp_path / f".{target.name}.partial-999999-abc"  # a partial of a process that is gone
    dead.mkdir()
    assert not ctx.is_built("standard")
    build(ctx, ["standard"])
    assert ctx.is_built("standard") and not dead.exists()
    assert json.loads((target / "manifest.json").read_text())["name"] == "standard"


def test_distill_needs_a_torch_fp32_teacher(tiny_built, tiny_ctx, context_for):
    from slimbench.spec.schema import spec_from_dict
    from slimbench.spec.zoo import Zoo

    specs = [*tiny_ctx.zoo.specs.values(),
             spec_from_dict({"name": "bad", "source": "onnx", "train": {"method": "distill", "epochs": 1}})]
    ctx = context_for(Zoo(specs), tiny_ctx.root)
    with pytest.raises(BuildError, match="teacher 'onnx' must be a torch fp32 variant"):
        build(ctx, ["bad"])


def test_trim_vocabulary_rewrites_ids_and_specials(tiny_base):
    tok = json.loads((tiny_base / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    keep_word = vocab["movie"]
    new, kept = trim_vocabulary(tok, [keep_word])
    assert kept == sorted(kept) and keep_word in kept and vocab["good"] not in kept
    assert new["model"]["vocab"]["movie"] == kept.index(keep_word)
    assert len(new["model"]["vocab"]) == len(kept)
    cls_ids = new["post_processor"]["special_tokens"]["[CLS]"]["ids"]
    assert cls_ids == [new["model"]["vocab"]["[CLS]"]]
    from tokenizers import Tokenizer

    t = Tokenizer.from_str(json.dumps(new))
    enc = t.encode("movie good")
    assert enc.tokens[:2] == ["[CLS]", "movie"] and "[UNK]" not in enc.tokens  # 'good' falls back to characters


def test_pca_projection_keeps_the_main_direction():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 1)) @ np.array([[3.0, 4.0, 0.0]]) / 5 + rng.normal(scale=0.01, size=(500, 3))
    mean, comps = pca_projection(x, 1)
    assert comps.shape == (1, 3)
    np.testing.assert_allclose(np.abs(comps[0]), [0.6, 0.8, 0.0], atol=0.02)


@pytest.mark.slow
def test_a_seed_replicate_builds_beside_the_specs_own_seed(tiny_built, tiny_ctx, context_for):
    """`slimbench build --seed N`: the named variants that train get train.seed N and their own
    artifacts; what they derive from is shared, what does not train is left alone."""
    from safetensors.numpy import load_file

    zoo = tiny_ctx.zoo.with_seed(1, ["light", "quantized"])
    assert zoo.get("quantized") == tiny_ctx.zoo.get("quantized")  # no [train]: unchanged
    assert zoo.get("standard") == tiny_ctx.zoo.get("standard")  # not named
    ctx = context_for(zoo, tiny_ctx.root)
    assert ctx.artifact_dir("standard") == tiny_built["standard"]  # the teacher is shared
    replicate = build(ctx, ["light"])["light"]
    assert replicate != tiny_built["light"]
    assert read_manifest(replicate)["spec"]["train"]["seed"] == 1
    assert read_manifest(tiny_built["light"])["spec"]["train"].get("seed", 0) == 0
    a, b = (load_file(str(p / "model.safetensors")) for p in (tiny_built["light"], replicate))
    assert any(not np.array_equal(a[k], b[k]) for k in a)  # another seed, other weights
    # a variant derived from a replicate is a replicate too (its source's spec is part of its hash)
    assert context_for(tiny_ctx.zoo.with_seed(1, ["standard"]), tiny_ctx.root).artifact_dir("quantized") \
        != tiny_ctx.artifact_dir("quantized")
