"""The NumPy BERT reference runtime: same logits as torch, clear errors, no framework imported."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from transformers import BertConfig, BertForSequenceClassification
from transformers.pytorch_utils import prune_linear_layer

from slimbench.errors import ArtifactError
from slimbench.runtimes.numpy_bert import NumpyBert, erf

TOLERANCE = 1e-4
TINY: dict[str, Any] = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                        "intermediate_size": 37, "max_position_embeddings": 40, "num_labels": 2}


def make_model(seed: int = 0, **overrides: Any) -> BertForSequenceClassification:
    """A tiny classifier with random (non-default) weights everywhere, LayerNorms and biases included."""
    torch.manual_seed(seed)
    model = BertForSequenceClassification(BertConfig(**{**TINY, **overrides})).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "LayerNorm.weight" in name:
                param.copy_(1.0 + 0.3 * noise)
            elif name.endswith("bias") or "LayerNorm" in name:
                param.copy_(0.2 * noise)
            elif "embeddings" in name:
                param.copy_(noise)
            else:  # Linear weights: unit-variance outputs, so attention and activations are far from linear
                param.copy_(noise / math.sqrt(param.shape[1]))
    return model


def save(model: BertForSequenceClassification, directory: Path) -> Path:
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def make_batch(vocab: int, lengths: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random ids, right-padded with 0 and mask 0 after each row's length."""
    rng = np.random.default_rng(seed)
    seq = max(lengths)
    ids = rng.integers(1, vocab, size=(len(lengths), seq), dtype=np.int64)
    mask = (np.arange(seq)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    return ids * mask, mask


def torch_logits(model: BertForSequenceClassification, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()


def assert_close(model: BertForSequenceClassification, numpy_model: NumpyBert, lengths: list[int]) -> float:
    ids, mask = make_batch(model.config.vocab_size, lengths)
    expected, actual = torch_logits(model, ids, mask), numpy_model.logits(ids, mask)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    delta = float(np.abs(actual - expected).max())
    assert delta < TOLERANCE, delta
    return delta


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(make_model(), tmp_path_factory.mktemp("numpy_bert") / "tiny")


@pytest.fixture
def tiny_copy(tiny_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_dir, tmp_path / "copy"))


def edit_config(directory: Path, **changes: Any) -> None:
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("overrides, lengths", [
    ({}, [13, 9, 1, 5, 13]),
    ({"hidden_size": 48, "num_attention_heads": 6, "num_hidden_layers": 3, "intermediate_size": 64,
      "num_labels": 3, "hidden_act": "relu"}, [7, 7, 2]),
    ({"hidden_size": 24, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 50,
      "num_labels": 3, "hidden_act": "gelu_new", "layer_norm_eps": 1e-5, "type_vocab_size": 1}, [11, 4]),
    ({"hidden_size": 64, "num_attention_heads": 8, "num_hidden_layers": 2, "intermediate_size": 128,
      "hidden_act": "gelu_pytorch_tanh"}, [40, 17, 3, 40]),
    ({"hidden_size": 16, "num_attention_heads": 1, "num_hidden_layers": 4, "intermediate_size": 20,
      "hidden_act": "silu"}, [6, 1]),
], ids=["gelu", "relu-3labels", "gelu_new", "gelu_tanh-full-length", "silu-1head"])
def test_logits_match_torch(tmp_path, overrides, lengths):
    model = make_model(**overrides)
    numpy_model = NumpyBert.load(save(model, tmp_path))
    assert_close(model, numpy_model, lengths)
    assert numpy_model.num_labels == model.config.num_labels
    assert numpy_model.parameters == sum(p.numel() for p in model.parameters())


def test_layer_norm_parameters_are_used(tmp_path):
    model = make_model(seed=3)
    ids, mask = make_batch(TINY["vocab_size"], [10, 6, 3])
    before = torch_logits(model, ids, mask)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm" in name:
                param.mul_(1.5).add_(0.25)
    assert np.abs(torch_logits(model, ids, mask) - before).max() > 1e-2  # the change is visible in the logits
    assert_close(model, NumpyBert.load(save(model, tmp_path)), [10, 6, 3])


def test_unpadded_single_sequence_and_default_mask(tiny_dir):
    model = BertForSequenceClassification.from_pretrained(tiny_dir).eval()
    numpy_model = NumpyBert.load(tiny_dir)
    ids, mask = make_batch(TINY["vocab_size"], [8])
    np.testing.assert_allclose(numpy_model.logits(ids), torch_logits(model, ids, mask), atol=TOLERANCE)
    assert numpy_model.logits(ids[:0], mask[:0]).shape == (0, 2)


def test_erf_is_accurate():
    x = np.linspace(-7, 7, 20001, dtype=np.float32)
    expected = np.array([math.erf(v) for v in x.astype(np.float64)])
    assert np.abs(erf(x) - expected).max() < 1e-6


def test_does_not_import_frameworks(tiny_dir):
    code = ("import sys, numpy as np; from slimbench.runtimes.numpy_bert import NumpyBert; "
            f"m = NumpyBert.load({str(tiny_dir)!r}); m.logits(np.array([[1, 2, 3]]), np.array([[1, 1, 0]])); "
            "print(any(k in sys.modules for k in ('torch', 'onnxruntime', 'transformers', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("victim", ["bert.encoder.layer.1.attention.output.dense.bias", "classifier.weight",
                                    "bert.embeddings.token_type_embeddings.weight", "bert.pooler.dense.weight"])
def test_missing_tensor_is_named(tiny_copy, victim):
    tensors = load_file(tiny_copy / "model.safetensors")
    del tensors[victim]
    save_file(tensors, tiny_copy / "model.safetensors")
    with pytest.raises(ArtifactError, match=rf"model\.safetensors.*{re.escape(victim)}.*is missing.*fix config\.json"):
        NumpyBert.load(tiny_copy)


def test_missing_pooler_says_it_is_needed(tiny_copy):
    tensors = load_file(tiny_copy / "model.safetensors")
    save_file({k: v for k, v in tensors.items() if "pooler" not in k}, tiny_copy / "model.safetensors")
    with pytest.raises(ArtifactError, match="bert.pooler.dense.weight.*needs a pooler"):
        NumpyBert.load(tiny_copy)


@pytest.mark.parametrize("changes, message", [
    ({"intermediate_size": 16},
     r"'bert\.encoder\.layer\.0\.intermediate\.dense\.weight' has shape \(37, 32\) .*at most \(16, 32\)"),
    ({"vocab_size": 120}, r"'bert\.embeddings\.word_embeddings\.weight' has shape \(100, 32\) .*\(120, 32\)"),
    ({"max_position_embeddings": 64},
     r"'bert\.embeddings\.position_embeddings\.weight' has shape \(40, 32\) .*\(64, 32\)"),
    ({"id2label": {"0": "a", "1": "b", "2": "c"}}, r"'classifier\.weight' has shape \(2, 32\) .*\(3, 32\)"),
    ({"num_hidden_layers": 3}, r"'bert\.encoder\.layer\.2\..*' with shape .* is missing"),
    ({"num_hidden_layers": 1}, r"'bert\.encoder\.layer\.1\..*' and 13 more are not part of the model"),
])
def test_shape_mismatch_names_tensor_and_shapes(tiny_copy, changes, message):
    edit_config(tiny_copy, **changes)
    with pytest.raises(ArtifactError, match=message + r".*the weights do not match config\.json; rebuild the variant"):
        NumpyBert.load(tiny_copy)


@pytest.mark.parametrize("changes, message", [
    ({"hidden_size": "32"}, r"config\.json: hidden_size = '32' is not an int"),
    ({"hidden_size": 30}, "hidden_size 30 is not a multiple of num_attention_heads 4"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key' is not supported"),
])
def test_invalid_config_values_are_named(tiny_copy, changes, message):
    edit_config(tiny_copy, **changes)
    with pytest.raises(ArtifactError, match=message):
        NumpyBert.load(tiny_copy)


def test_other_model_types_are_rejected(tiny_copy):
    # distilbert, roberta and electra are read now (tests/test_families.py); ALBERT's shared layers are not
    edit_config(tiny_copy, model_type="albert")
    with pytest.raises(ArtifactError, match=r"config\.json: model_type 'albert'.*only BERT-family"):
        NumpyBert.load(tiny_copy)


def test_unknown_activation_is_rejected(tiny_copy):
    edit_config(tiny_copy, hidden_act="quick_gelu")
    with pytest.raises(ArtifactError, match="hidden_act 'quick_gelu' is not supported.*gelu_new"):
        NumpyBert.load(tiny_copy)


@pytest.mark.parametrize("damage", ["half", "header", "garbage"])
def test_corrupt_weights_give_a_clear_error(tiny_copy, damage):
    path = tiny_copy / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({"half": data[: len(data) // 2], "header": data[:5], "garbage": b"\x00\xff" * 64}[damage])
    with pytest.raises(ArtifactError, match=r"model\.safetensors.*corrupt or truncated"):
        NumpyBert.load(tiny_copy)


@pytest.mark.parametrize("victim", ["config.json", "model.safetensors"])
def test_missing_files_are_named(tiny_copy, victim):
    (tiny_copy / victim).unlink()
    with pytest.raises(ArtifactError, match=rf"{re.escape(victim)} is missing"):
        NumpyBert.load(tiny_copy)


def test_corrupt_config_is_named(tiny_copy):
    (tiny_copy / "config.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"config\.json is corrupt"):
        NumpyBert.load(tiny_copy)


def _prune(model: BertForSequenceClassification, ffn: dict[int, list[int]], heads: dict[int, list[int]]) -> None:
    """Shrink layers in place: keep the listed FFN neurons; drop the listed attention heads."""
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    for i, keep in ffn.items():
        layer, index = model.bert.encoder.layer[i], torch.tensor(keep, dtype=torch.long)
        layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, index, dim=0)
        layer.output.dense = prune_linear_layer(layer.output.dense, index, dim=1)
    for i, dropped in heads.items():
        attention = model.bert.encoder.layer[i].attention
        kept = [h for h in range(model.config.num_attention_heads) if h not in dropped]
        index = torch.cat([torch.arange(h * head_dim, (h + 1) * head_dim) for h in kept])
        for name in ("query", "key", "value"):
            setattr(attention.self, name, prune_linear_layer(getattr(attention.self, name), index, dim=0))
        attention.output.dense = prune_linear_layer(attention.output.dense, index, dim=1)
        # BertSelfAttention reshapes with view(..., -1, head_size); these two are kept consistent anyway
        attention.self.num_attention_heads = len(kept)
        attention.self.all_head_size = len(kept) * head_dim
    model.eval()


def _save_pruned(model: BertForSequenceClassification, directory: Path, pruned_heads: dict[int, list[int]]) -> Path:
    model.config.save_pretrained(directory)  # config.json describes the unpruned shape
    edit_config(directory, pruned_heads={str(k): v for k, v in pruned_heads.items()})
    save_file({k: v.contiguous().numpy() for k, v in model.state_dict().items()}, directory / "model.safetensors")
    return directory


def test_pruned_heads_and_ffn_match_torch(tmp_path):
    model = make_model(num_hidden_layers=3)
    heads = {1: [0, 2], 2: [3]}
    _prune(model, ffn={0: list(range(0, 37, 2)), 2: [1, 5, 30]}, heads=heads)
    numpy_model = NumpyBert.load(_save_pruned(model, tmp_path, heads))
    assert numpy_model.heads == (4, 2, 3)
    assert numpy_model.intermediate_sizes == (19, 37, 3)
    assert numpy_model.parameters == sum(p.numel() for p in model.parameters())
    assert_close(model, numpy_model, [12, 5, 1, 9])


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
def test_pruned_without_config_entry_matches_torch(tmp_path):
    """What transformers 5 (no pruned_heads) and slimbench's pruner write: the original config.json."""
    model = make_model()
    _prune(model, ffn={0: [], 1: [0, 3, 4, 8]}, heads={0: [1], 1: [0, 1, 3]})
    numpy_model = NumpyBert.load(_save_pruned(model, tmp_path, {}))
    assert numpy_model.heads == (3, 1) and numpy_model.intermediate_sizes == (0, 4)
    assert_close(model, numpy_model, [7, 3])


def test_pruned_heads_entry_is_checked(tmp_path):
    model = make_model()
    _prune(model, ffn={}, heads={1: [0, 2]})
    directory = _save_pruned(model, tmp_path, {1: [0]})
    with pytest.raises(ArtifactError, match=r"'bert\.encoder\.layer\.1\.attention\.self\.query\.weight' holds 2 "
                                            r"heads but config\.json's pruned_heads leaves 3"):
        NumpyBert.load(directory)


def test_heads_must_be_whole(tmp_path):
    model = make_model()
    _prune(model, ffn={}, heads={0: [1]})  # 24 query rows: three heads of 8
    directory = _save_pruned(model, tmp_path, {})
    edit_config(directory, num_attention_heads=2)  # heads of 16: 24 rows is not a whole number of heads
    with pytest.raises(ArtifactError, match=r"'bert\.encoder\.layer\.0\.attention\.self\.query\.weight' has shape "
                                            r"\(24, 32\) but config\.json implies \(32, 32\) \(2 heads of 16"):
        NumpyBert.load(directory)


def test_from_tensors_matches_load(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    in_memory = NumpyBert.from_tensors(config, load_file(tiny_dir / "model.safetensors"))
    ids, mask = make_batch(TINY["vocab_size"], [9, 4])
    np.testing.assert_array_equal(in_memory.logits(ids, mask), NumpyBert.load(tiny_dir).logits(ids, mask))
    assert in_memory.heads == (4, 4) and in_memory.intermediate_sizes == (37, 37)
