from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from slimbench.errors import ArtifactError
from slimbench.runtimes.runners import Encoder, ExtraWorkRunner, open_runner, read_manifest, runner_class


def load_unverified(directory):
    """The runner's own loading, past `verify_artifact`: its errors must be clear too."""
    manifest = read_manifest(directory)
    return runner_class(manifest["format"])(directory, 1, manifest)


@pytest.mark.parametrize("name", ["standard", "quantized", "onnx", "onnx-int8", "ultra-light"])
def test_runner_predict_path(tiny_built, tiny_ctx, name):
    texts = [e.text for e in tiny_ctx.splits.test[:20]]
    gold = [e.label for e in tiny_ctx.splits.test[:20]]
    with open_runner(tiny_built[name], threads=1) as runner:
        logits = runner.predict_logits(texts)
        proba = runner.predict_proba(texts)
        labels = runner.predict(texts)
    assert logits.shape == (20, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert labels == list(logits.argmax(axis=1))
    assert np.mean(np.array(labels) == np.array(gold)) >= 0.9


def test_encoder_truncates_and_pads_per_batch(tiny_base):
    enc = Encoder(tiny_base / "tokenizer.json", max_length=8)
    ids, mask = enc(["good", "the movie was good and the plot was great and fun"])
    assert ids.shape == (2, 8) and mask[0].sum() == 3 and mask[1].sum() == 8


def test_onnx_runner_does_not_import_torch(tiny_built):
    code = ("import sys; from slimbench.runtimes.runners import open_runner; "
            f"r = open_runner({str(tiny_built['onnx-int8'])!r}); r.predict(['good movie']); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name, victim, message", [
    ("onnx", "model.onnx", "onnxruntime cannot load .*model.onnx.*corrupt or truncated"),
    ("standard", "model.safetensors", "cannot load the model in"),
    ("quantized", "model.int8.safetensors", "cannot read .*model.int8.safetensors.*corrupt or truncated"),
    ("onnx", "tokenizer.json", "cannot load tokenizer .*tokenizer.json"),
])
def test_truncated_files_give_a_clear_error(tiny_built, tmp_path, name, victim, message):
    copy = tmp_path / tiny_built[name].name
    shutil.copytree(tiny_built[name], copy)
    data = (copy / victim).read_bytes()
    (copy / victim).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=f"{victim} is {len(data) // 2:,} bytes but its build wrote {len(data):,}"):
        open_runner(copy)
    with pytest.raises(ArtifactError, match=message):
        load_unverified(copy)


def test_missing_or_corrupt_manifest(tmp_path, tiny_built):
    with pytest.raises(ArtifactError, match="is not a built variant .*run `slimbench build`"):
        open_runner(tmp_path)
    copy = tmp_path / "x"
    shutil.copytree(tiny_built["onnx"], copy)
    (copy / "manifest.json").write_text("{")
    with pytest.raises(ArtifactError, match="manifest.json is corrupt"):
        open_runner(copy)
    (copy / "manifest.json").write_text(json.dumps({"format": "tflite", "max_length": 8}))
    with pytest.raises(ArtifactError, match="unknown artifact format 'tflite'"):
        open_runner(copy)


def test_config_that_does_not_match_the_weights(tiny_built, tmp_path):
    copy = tmp_path / tiny_built["standard"].name
    shutil.copytree(tiny_built["standard"], copy)
    config = json.loads((copy / "config.json").read_text())
    config["hidden_size"] = 64
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="config.json (is .* bytes but its build wrote|does not match the sha256)"):
        open_runner(copy)
    with pytest.raises(ArtifactError, match="cannot load the model in .*do not match config.json.*rebuild the variant"):
        load_unverified(copy)
    config["hidden_size"], config["num_hidden_layers"] = 32, 3  # an extra layer the weights lack
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"weights do not match config.json \(16 tensors, e.g. bert.encoder.layer.2"):
        load_unverified(copy)
    (copy / "config.json").unlink()
    with pytest.raises(ArtifactError, match="config.json is missing .the build wrote it."):
        open_runner(copy)
    with pytest.raises(ArtifactError, match="has no config.json"):
        load_unverified(copy)


def test_extra_work_runner_adds_the_requested_fraction(tiny_built):
    import time

    class Fixed:
        name, threads = "fixed", 1

        def predict_logits(self, texts):
            time.sleep(0.01)
            return np.zeros((len(texts), 2))

        def close(self):
            pass

    slow = ExtraWorkRunner(Fixed(), 0.5)  # type: ignore[arg-type]
    t = time.perf_counter()
    slow.predict(["x"])
    assert time.perf_counter() - t >= 0.015  # 10 ms + at least 50 % of it, spun on the CPU
