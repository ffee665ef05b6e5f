"""Corrupt, swapped and planted artifact files: nothing is measured unless it is what its build wrote
(`formats.verify.verify_artifact`), pickles are never loaded, and a user's checkpoint gets a user's message."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slimbench.build.builder import BuildContext, build
from slimbench.data import table_dataset
from slimbench.errors import ArtifactError, SlimbenchError
from slimbench.formats import verify
from slimbench.formats.torch_io import load_hf
from slimbench.runtimes.runners import open_runner, read_manifest, verify_artifact
from slimbench.spec.schema import spec_from_dict
from slimbench.spec.zoo import Zoo
from slimbench.testing import make_tiny_checkpoint, synthetic_examples

TEXTS = [e.text for e in synthetic_examples(24, seed=9)]


def _csv(path: Path, n: int = 200) -> Path:
    path.write_text("text,label\n" + "\n".join(f"{e.text},{'pos' if e.label else 'neg'}"
                                               for e in synthetic_examples(n, seed=4)) + "\n")
    return path


def _zoo() -> Zoo:
    return Zoo(spec_from_dict(d) for d in [
        {"name": "standard", "base": "minilm", "train": {"method": "finetune", "epochs": 1}, "max_length": 16},
        {"name": "quantized", "source": "standard", "steps": ["torch-dynamic-int8"], "precision": "int8",
         "max_length": 16},
        {"name": "onnx", "source": "standard", "steps": ["export-onnx"], "runtime": "onnxruntime", "max_length": 16},
        {"name": "standard-numpy", "source": "standard", "steps": ["numpy-reference"], "runtime": "numpy",
         "max_length": 16},
    ])


@pytest.fixture(scope="module")
def user_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's own fine-tuned classifier (a tiny BERT with a head): used as it is, no training."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("user") / "mine", with_head=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, user_model: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    splits = table_dataset(_csv(root / "d.csv"))
    ctx = BuildContext(zoo=_zoo(), root=root / "artifacts", splits_loader=lambda: splits,
                       base_override=str(user_model), log=lambda s: None, threads=1)
    return build(ctx, list(ctx.zoo.names))


@pytest.fixture(scope="module")
def pristine(built: dict[str, Path]) -> dict[str, np.ndarray]:
    out = {}
    for name, path in built.items():
        with open_runner(path) as runner:
            out[name] = runner.predict_logits(TEXTS)
    return out


def fresh_copy(src: Path, tmp_path: Path) -> Path:
    """The artifact under its own name in a new cache root (no stamp yet)."""
    dst = tmp_path / "artifacts" / src.name
    shutil.copytree(src, dst)
    return dst


# --- the examples -------------------------------------------------------------------------

def test_weights_overwritten_with_same_size_and_valid_header(built, tmp_path):
    art = fresh_copy(built["standard"], tmp_path)
    verify_artifact(art)  # healthy, and now stamped
    weights = art / "model.safetensors"
    data = bytearray(weights.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    before = weights.stat()
    data[header:] = np.random.default_rng(0).bytes(len(data) - header)
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with its old mtime put back
    with pytest.raises(ArtifactError, match=r"model.safetensors does not match the sha256 its build recorded"):
        open_runner(art)


def test_manifest_copied_from_another_variant(built, tmp_path):
    numpy_dir = fresh_copy(built["standard-numpy"], tmp_path)
    shutil.copyfile(built["standard"] / "manifest.json", numpy_dir / "manifest.json")
    with pytest.raises(ArtifactError, match=r"its manifest describes variant 'standard' with spec hash \w{12}, which "
                                            r"belongs in a directory named standard-\w{12}; the manifest was copied"):
        open_runner(numpy_dir)
    renamed = tmp_path / "artifacts" / "quantized-000000000000"
    shutil.copytree(built["quantized"], renamed)
    with pytest.raises(ArtifactError, match="belongs in a directory named quantized-"):
        verify_artifact(renamed)


def test_manifest_edited_to_another_runtime_or_length(built, tmp_path):
    art = fresh_copy(built["standard-numpy"], tmp_path)
    m = read_manifest(art)
    for key, value, message in (("format", "hf", r"runtime 'numpy' vs 'torch'"),
                                ("max_length", 64, r"max_length 16 vs 64"),
                                ("model_file", "tokenizer.json", None)):
        edited = {**m, key: value}
        (art / "manifest.json").write_text(json.dumps(edited))
        if message is None:
            open_runner(art).close()  # the numpy runner reads model.safetensors by name, not model_file
        else:
            with pytest.raises(ArtifactError, match=message):
                open_runner(art)


def test_missing_config_json_is_named(built, tmp_path):
    for name in ("standard", "quantized", "standard-numpy"):
        art = fresh_copy(built[name], tmp_path / name)
        (art / "config.json").unlink()
        with pytest.raises(ArtifactError, match=r"config.json is missing \(the build wrote it\); delete .* and rebuild"):
            open_runner(art)


def _pickle(path: Path) -> None:
    import torch

    torch.save({"weight": torch.zeros(2)}, path)


def test_planted_pickle_is_never_loaded(built, tmp_path, monkeypatch, user_model):
    import torch

    calls: list[Any] = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a) or {})
    art = fresh_copy(built["standard"], tmp_path)
    _pickle(art / "pytorch_model.bin")
    with pytest.raises(ArtifactError, match="holds pytorch_model.bin, a pickle its build did not write; slimbench "
                                            "never loads pickled weights"):
        open_runner(art)
    (art / "model.safetensors").unlink()  # only the pickle left: the loader itself refuses it too
    with pytest.raises(ArtifactError, match=r"has no model.safetensors \(found \['pytorch_model.bin'\]: pickled "
                                            "weights are never loaded"):
        load_hf(art)
    mine = tmp_path / "mine"
    shutil.copytree(user_model, mine)
    _pickle(mine / "pytorch_model.bin")  # beside real safetensors: ignored, never opened
    assert load_hf(mine, user_checkpoint=True) is not None
    assert calls == []


@pytest.mark.parametrize("change, found", [
    ({"num_hidden_layers": 3}, r"\(16 tensors, e.g. bert.encoder.layer.2"),
    ({"hidden_size": 48}, r"tensors, e.g. "),
    ({"intermediate_size": 16}, r"tensors, e.g. bert.encoder.layer.0"),
])
def test_user_checkpoint_whose_config_does_not_match_its_weights(tmp_path, user_model, change, found):
    mine = tmp_path / "mine"
    shutil.copytree(user_model, mine)
    config = json.loads((mine / "config.json").read_text())
    (mine / "config.json").write_text(json.dumps({**config, **change}))
    splits = table_dataset(_csv(tmp_path / "d.csv"))
    ctx = BuildContext(zoo=_zoo(), root=tmp_path / "artifacts", splits_loader=lambda: splits,
                       base_override=str(mine), log=lambda s: None, threads=1)
    with pytest.raises(SlimbenchError) as info:
        build(ctx, ["standard"])
    message = str(info.value)
    assert str(mine) in message and "do not match config.json" in message
    assert "fix config.json or re-save the checkpoint" in message
    assert "rebuild" not in message and "above report" not in message
    import re

    assert re.search(found, message), message


# --- verification is cheap: each file hashed once, then a stat -----------------------------------

def test_each_file_is_hashed_once(built, tmp_path, monkeypatch):
    art = fresh_copy(built["onnx"], tmp_path)
    hashed: list[str] = []
    real = verify._sha256
    monkeypatch.setattr(verify, "_sha256", lambda p: hashed.append(p.name) or real(p))
    verify_artifact(art)
    files = sorted(read_manifest(art)["files_sha256"])
    assert sorted(hashed) == files
    hashed.clear()
    verify_artifact(art)
    open_runner(art).close()
    assert hashed == []
    (art / "tokenizer.json").write_bytes((art / "tokenizer.json").read_bytes())  # same bytes, new stat
    verify_artifact(art)
    assert hashed == ["tokenizer.json"]
    stamp = tmp_path / "artifacts" / ".verified" / f"{art.name}.json"
    stamp.write_text("{not json")  # a broken stamp only costs a re-hash
    hashed.clear()
    verify_artifact(art)
    assert sorted(hashed) == files


# --- fuzz: corrupted bytes anywhere are refused; manifest edits are refused or change nothing --------

HOSTILE: list[Any] = [None, 0, -1, 2, 10**6, "", "x", "hf", "onnx", "numpy-bert", "head-tail", [], {}, True, 1.5]


def _corrupt(art: Path, rng: random.Random) -> str:
    files = sorted(p.name for p in art.iterdir() if p.name != "manifest.json")
    name = rng.choice(files)
    path = art / name
    data = bytearray(path.read_bytes())
    op = rng.choice(["flip", "truncate", "append", "random", "delete", "extra", "swap"])
    if op == "flip":
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
    elif op == "truncate":
        path.write_bytes(bytes(data[: rng.randrange(len(data))]))
    elif op == "append":
        path.write_bytes(bytes(data) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))))
    elif op == "random":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(len(data))))
    elif op == "delete":
        path.unlink()
    elif op == "extra":
        (art / rng.choice(["model.onnx.data", "notes.txt", "pytorch_model.bin", ".hidden"])).write_bytes(b"x" * 10)
    else:
        other = rng.choice([f for f in files if f != name] or [name])
        a, b = path.read_bytes(), (art / other).read_bytes()
        if a == b:
            path.write_bytes(a + b"\0")
        else:
            path.write_bytes(b)
            (art / other).write_bytes(a)
    return f"{op} {name}"


@pytest.mark.parametrize("seed", range(24))
def test_fuzzed_corrupt_artifact_bytes_are_refused(built, tmp_path, seed):
    rng = random.Random(seed)
    name = rng.choice(sorted(built))
    art = fresh_copy(built[name], tmp_path)
    what = _corrupt(art, rng)
    with pytest.raises(ArtifactError):
        open_runner(art)
    assert what


@pytest.mark.parametrize("seed", range(24))
def test_fuzzed_manifest_edits_are_refused_or_change_nothing(built, pristine, tmp_path, seed):
    rng = random.Random(seed)
    name = rng.choice(sorted(built))
    art = fresh_copy(built[name], tmp_path)
    m = read_manifest(art)
    keys = ["format", "max_length", "truncation", "model_file", "name", "spec_hash", "files_sha256", "files",
            "runtime", "precision", "spec", "description", "schema"]
    edits = {}
    for key in rng.sample(keys, rng.randint(1, 3)):
        value = rng.choice(HOSTILE)
        if key in ("files_sha256", "files") and isinstance(m.get(key), dict) and rng.random() < 0.6:
            value = dict(m[key])
            victim = rng.choice(sorted(value))
            value[victim] = rng.choice(["0" * 64, 1, None, "x"] if key == "files_sha256" else [0, 1, -1, "x"])
        if key == "truncation" and read_manifest(art)["spec"].get("steps"):
            continue  # a derived variant's truncation comes from its source's spec: not checkable here
        edits[key] = value
        m[key] = value
    (art / "manifest.json").write_text(json.dumps(m))
    try:
        runner = open_runner(art)
    except ArtifactError:
        return
    with runner:
        logits = runner.predict_logits(TEXTS)
    np.testing.assert_array_equal(logits, pristine[name], err_msg=f"{name}: {edits}")
