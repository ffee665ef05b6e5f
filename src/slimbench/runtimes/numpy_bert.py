"""A NumPy-only BERT sequence classifier: the reference runtime with no framework at all.

Every other runtime pays for a framework before it computes anything: torch and onnxruntime cost
import time, resident memory and install size. `NumpyBert` runs the same fp32 forward pass
(embeddings -> encoder layers -> pooler -> classifier) with nothing but NumPy, so the difference
between it and a framework runner is what the framework itself costs.

It reads the Hugging Face layout that `BertForSequenceClassification.save_pretrained(dir,
safe_serialization=True)` writes (`config.json` + `model.safetensors`), looks every weight up by
its tensor name and checks its shape against what `config.json` implies, so a checkpoint that does
not match its config fails at load time with a message naming the tensor, never with wrong logits
(model tensors the config does not account for, such as an extra layer, are an error too).

Structurally pruned checkpoints are supported. transformers 5 has no `prune_heads` and no
`pruned_heads` config field, so a pruned model is saved with its original config.json and smaller
tensors; the per-layer sizes are therefore read from the tensors: a layer's feed-forward width from
its `intermediate.dense.weight` (0 .. `intermediate_size` rows; `output.dense.weight` must agree) and its head count from its `attention.self.query.weight` (rows / head size, 1 ..
`num_attention_heads` heads, where the head size is `hidden_size // num_attention_heads`; key, value
and `attention.output.dense` must agree). A transformers-4 style `pruned_heads` mapping in
config.json, if present, is checked against those counts. Every other shape must match config.json
exactly.

Everything is float32. Weights are transposed once at load time (the forward pass is `x @ w + b`),
query/key/value are one fused matmul per layer with the 1/sqrt(head size) scale folded into the query
weights, and the last layer runs its queries and feed-forward for the [CLS] position only, the one
the pooler reads. Logits agree with torch to about 1e-6.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open

from slimbench.errors import ArtifactError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FIX = "the weights do not match config.json; rebuild the variant or fix config.json"


@dataclass(frozen=True)
class _Layout:
    """Where a family keeps BERT's tensors and how its config names BERT's keys. RoBERTa and ELECTRA
    are BERT with another prefix and head (RoBERTa: positions counted from padding_idx + 1; ELECTRA:
    embeddings narrower than the hidden size, projected); DistilBERT renames every module, has no
    token types and a ReLU head."""

    prefix: str  # the base model's tensors: "bert."
    layers: str = "encoder.layer."
    names: tuple[tuple[str, str], ...] = ()  # BERT's layer-relative tensor names -> this family's
    config_keys: tuple[tuple[str, str], ...] = ()  # BERT's config keys -> this family's
    defaults: tuple[tuple[str, Any], ...] = ()  # the family's config defaults where BERT's differ
    head: tuple[str, str, str] = ("bert.pooler.dense", "tanh", "classifier")  # dense, activation, output
    token_types: bool = True
    position_offset: bool = False  # RoBERTa: position ids from the input ids, after padding_idx
    layer_norm_eps: float | None = None  # a fixed epsilon the config does not state (DistilBERT)

    def layer_name(self, name: str) -> str:
        return dict(self.names).get(name, name)


_ENCODER_HEAD = ("classifier.dense", "tanh", "classifier.out_proj")
LAYOUTS: dict[str, _Layout] = {
    "bert": _Layout("bert."),
    "roberta": _Layout("roberta.", head=_ENCODER_HEAD, position_offset=True,
                       defaults=(("vocab_size", 50265), ("pad_token_id", 1))),
    "electra": _Layout("electra.", head=("classifier.dense", "gelu", "classifier.out_proj"),
                       defaults=(("vocab_size", 30522), ("hidden_size", 256), ("num_attention_heads", 4),
                                 ("intermediate_size", 1024))),
    "distilbert": _Layout(
        "distilbert.", layers="transformer.layer.", head=("pre_classifier", "relu", "classifier"), token_types=False,
        layer_norm_eps=1e-12,
        names=(("attention.self.query", "attention.q_lin"), ("attention.self.key", "attention.k_lin"),
               ("attention.self.value", "attention.v_lin"), ("attention.output.dense", "attention.out_lin"),
               ("attention.output.LayerNorm", "sa_layer_norm"), ("intermediate.dense", "ffn.lin1"),
               ("output.dense", "ffn.lin2"), ("output.LayerNorm", "output_layer_norm")),
        config_keys=(("hidden_size", "dim"), ("num_hidden_layers", "n_layers"), ("num_attention_heads", "n_heads"),
                     ("intermediate_size", "hidden_dim"), ("hidden_act", "activation")),
        defaults=(("num_hidden_layers", 6),)),
}
LAYOUTS["xlm-roberta"] = LAYOUTS["camembert"] = LAYOUTS["roberta"]
SUPPORTED_MODEL_TYPES = tuple(LAYOUTS)

# BertConfig's defaults, used the way transformers uses them when config.json leaves a key out.
BERT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "max_position_embeddings": 512,
    "type_vocab_size": 2, "layer_norm_eps": 1e-12,
}

_F32 = np.float32
_MASKED = np.finfo(np.float32).min  # the score of a padded key (transformers' mask value): exp() gives 0


# --- activations: in place on a float32 array, block by block -------------------------------------

# Elementwise work runs on blocks of this many elements so that the temporaries stay in cache: about
# four times faster than whole-array passes for an FFN activation of a few megabytes.
_BLOCK = 1 << 16

# Rational approximation of erf on [-4, 4] (the one Eigen, XLA and TensorFlow use for float32):
# erf(x) ~ x * P(x^2) / Q(x^2); outside the interval erf is +-1 to float32 precision. Evaluated in
# float32 its absolute error is below 5e-7 (against math.erf), a few float32 ulps.
_ERF_P = tuple(_F32(c) for c in (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                                 -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                                 -1.60960333262415e-02))
_ERF_Q = tuple(_F32(c) for c in (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                                 -7.37332916720468e-03, -1.42647390514189e-02))
_SQRT_HALF = _F32(1.0 / math.sqrt(2.0))
_SQRT_2_OVER_PI = _F32(math.sqrt(2.0 / math.pi))


def _horner(z2: np.ndarray, coefficients: tuple[np.float32, ...]) -> np.ndarray:
    out = z2 * coefficients[0]
    for c in coefficients[1:-1]:
        out += c
        out *= z2
    out += coefficients[-1]
    return out


def _erf_block(z: np.ndarray) -> None:
    np.clip(z, _F32(-4.0), _F32(4.0), out=z)
    z2 = z * z
    p = _horner(z2, _ERF_P)
    p *= z
    np.divide(p, _horner(z2, _ERF_Q), out=z)


def _gelu_block(x: np.ndarray) -> None:
    phi = x * _SQRT_HALF
    _erf_block(phi)
    phi += _F32(1.0)
    phi *= _F32(0.5)
    x *= phi


def _gelu_tanh_block(x: np.ndarray) -> None:
    inner = x * x
    inner *= _F32(0.044715)
    inner += _F32(1.0)
    inner *= x
    inner *= _SQRT_2_OVER_PI
    np.tanh(inner, out=inner)
    inner += _F32(1.0)
    inner *= _F32(0.5)
    x *= inner


def _silu_block(x: np.ndarray) -> None:
    sigmoid = x * _F32(0.5)  # sigmoid(x) = (1 + tanh(x / 2)) / 2: no exp() to overflow
    np.tanh(sigmoid, out=sigmoid)
    sigmoid += _F32(1.0)
    sigmoid *= _F32(0.5)
    x *= sigmoid


def _blockwise(kernel: Callable[[np.ndarray], None]) -> Callable[[np.ndarray], np.ndarray]:
    def apply(x: np.ndarray) -> np.ndarray:
        if not x.flags.c_contiguous:
            raise ValueError("in-place activations need a C-contiguous array")
        flat = x.reshape(-1)
        for start in range(0, flat.size, _BLOCK):
            kernel(flat[start : start + _BLOCK])
        return x

    apply.__doc__ = f"{kernel.__name__.strip('_').removesuffix('_block')} in place on a contiguous float32 array."
    return apply


gelu_ = _blockwise(_gelu_block)
gelu_tanh_ = _blockwise(_gelu_tanh_block)
silu_ = _blockwise(_silu_block)


def relu_(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, _F32(0.0), out=x)


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorised float32 error function (absolute error < 5e-7)."""
    out = np.array(x, dtype=_F32, order="C")
    return _blockwise(_erf_block)(out)


# hidden_act -> activation applied in place (exact "gelu" as torch's erf GELU; the tanh approximation
# for "gelu_new" / "gelu_pytorch_tanh", which are the same formula).
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gelu": gelu_, "gelu_new": gelu_tanh_, "gelu_pytorch_tanh": gelu_tanh_, "relu": relu_,
    "silu": silu_, "swish": silu_,
}


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis (biased variance, as torch)."""
    centred = x - x.mean(axis=-1, keepdims=True)
    var = np.mean(np.square(centred), axis=-1, keepdims=True)
    var += _F32(eps)
    centred /= np.sqrt(var, out=var)
    centred *= weight
    centred += bias
    return centred


def softmax_(scores: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis, in place."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


# --- weights -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layer:
    """One encoder layer, weights pre-transposed to (in, out) so the forward pass is `x @ w + b`."""

    heads: int
    qkv_w: np.ndarray  # (hidden, 3 * heads * head_dim): [query * head_dim**-0.5 | key | value]
    qkv_b: np.ndarray
    attn_out_w: np.ndarray  # (heads * head_dim, hidden)
    attn_out_b: np.ndarray
    attn_ln_w: np.ndarray
    attn_ln_b: np.ndarray
    ffn_in_w: np.ndarray  # (hidden, intermediate)
    ffn_in_b: np.ndarray
    ffn_out_w: np.ndarray  # (intermediate, hidden)
    ffn_out_b: np.ndarray
    ffn_ln_w: np.ndarray
    ffn_ln_b: np.ndarray

    @property
    def intermediate(self) -> int:
        return self.ffn_in_w.shape[1]


def _num_labels(config: Mapping[str, Any], where: str) -> int:
    if isinstance(config.get("id2label"), dict):
        return len(config["id2label"])
    labels = config.get("num_labels", 2)
    if type(labels) is not int:
        raise ArtifactError(f"{where}: num_labels = {labels!r} is not an int; fix config.json")
    return labels


def _pruned_heads(config: Mapping[str, Any]) -> dict[int, int]:
    """{layer: number of heads removed} from a transformers-4 style `pruned_heads` entry, if any."""
    pruned = config.get("pruned_heads")
    if not isinstance(pruned, dict):
        return {}
    try:
        return {int(layer): len(set(heads)) for layer, heads in pruned.items()}
    except (TypeError, ValueError):
        return {}


class _Checker:
    """Looks tensors up by name and checks their shapes; errors name the file and the tensor."""

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], get: Callable[[str], np.ndarray], where: str,
                 config_where: str = "config"):
        self.shapes, self._get, self.where, self.config_where = shapes, get, where, config_where
        self.elements = 0  # elements of every tensor read: the checkpoint's parameter count
        self.used: set[str] = set()
        self.prefixes: tuple[str, ...] = ("bert.", "classifier.")  # the tensors the model must account for

    def fail(self, message: str) -> ArtifactError:
        return ArtifactError(f"{self.where}: {message}; {FIX}")

    def shape(self, name: str, expected: tuple[int | None, ...]) -> tuple[int, ...]:
        """The tensor's shape, checked against `expected` (None: any size along that axis)."""
        shown = tuple("*" if e is None else e for e in expected)
        self.used.add(name)
        if name not in self.shapes:
            hint = ""
            if name.startswith("bert.pooler."):
                hint = " (BertForSequenceClassification classifies the pooled [CLS] vector: it needs a pooler)"
            raise self.fail(f"tensor {name!r} with shape {shown} is missing{hint}")
        actual = tuple(self.shapes[name])
        mismatch = len(actual) != len(expected) or any(
            e is not None and e != a for e, a in zip(expected, actual, strict=False))
        if mismatch:
            raise self.fail(f"tensor {name!r} has shape {actual} but config.json implies {shown}")
        return actual

    def get(self, name: str, expected: tuple[int | None, ...]) -> np.ndarray:
        self.shape(name, expected)
        array = self._get(name)
        self.elements += array.size
        if not np.issubdtype(array.dtype, np.floating):
            raise self.fail(f"tensor {name!r} has dtype {array.dtype}, expected floating point")
        return array

    def check_all_used(self) -> None:
        """Tensors of the model that the config does not account for (say, a layer too many) are an error;
        buffers (`position_ids`) and tensors of other heads (`cls.*`) are ignored."""
        unused = sorted(name for name in self.shapes if name not in self.used
                        and name.startswith(self.prefixes)
                        and not name.endswith(("position_ids", "token_type_ids")))
        if unused:
            shown = ", ".join(repr(n) for n in unused[:3]) + (f" and {len(unused) - 3} more" if len(unused) > 3 else "")
            raise self.fail(f"tensor(s) {shown} are not part of the model config.json describes")

    def weight(self, name: str, expected: tuple[int | None, ...]) -> np.ndarray:
        """A Linear weight (out, in), returned transposed to a contiguous float32 (in, out)."""
        return np.ascontiguousarray(self.get(name, expected).T, dtype=_F32)

    def vector(self, name: str, size: int) -> np.ndarray:
        return np.ascontiguousarray(self.get(name, (size,)), dtype=_F32)


class NumpyBert:
    """BertForSequenceClassification's inference forward pass in fp32 NumPy."""

    def __init__(self, config: Mapping[str, Any], checker: _Checker):
        """Use `NumpyBert.load(directory)` or `NumpyBert.from_tensors(config, tensors)`."""
        model_type = config.get("model_type")
        if model_type not in LAYOUTS:
            raise ArtifactError(f"{checker.config_where}: model_type {model_type!r} is not supported; the "
                                "NumPy runtime supports only BERT-family checkpoints (model_type "
                                f"{', '.join(repr(t) for t in SUPPORTED_MODEL_TYPES)})")
        layout = LAYOUTS[str(model_type)]
        keys = dict(layout.config_keys)
        cfg = {**BERT_DEFAULTS, **dict(layout.defaults)}
        cfg.update({k: config[keys.get(k, k)] for k in BERT_DEFAULTS if keys.get(k, k) in config})
        for key, default in BERT_DEFAULTS.items():
            if type(cfg[key]) is not type(default) and not (isinstance(default, float) and type(cfg[key]) is int):
                raise ArtifactError(f"{checker.config_where}: {key} = {cfg[key]!r} is not "
                                    f"{'an' if isinstance(default, int) else 'a'} {type(default).__name__}; "
                                    "fix config.json")
        act = cfg["hidden_act"]
        if act not in ACTIVATIONS:
            raise ArtifactError(f"{checker.config_where}: hidden_act {act!r} is not supported by the NumPy "
                                f"runtime; supported: {', '.join(sorted(ACTIVATIONS))}")
        position_type = config.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ArtifactError(f"{checker.config_where}: position_embedding_type {position_type!r} is not "
                                "supported; the NumPy runtime implements absolute position embeddings only")
        hidden, n_heads = cfg["hidden_size"], cfg["num_attention_heads"]
        if n_heads <= 0 or hidden % n_heads:
            raise ArtifactError(f"{checker.config_where}: hidden_size {hidden} is not a multiple of "
                                f"num_attention_heads {n_heads}; fix config.json")
        self.activation: Callable[[np.ndarray], np.ndarray] = ACTIVATIONS[act]  # in place
        self.hidden_act: str = act
        self.hidden_size = hidden
        self.head_dim = hidden // n_heads
        self.eps = float(layout.layer_norm_eps or cfg["layer_norm_eps"])
        self.layout = layout
        positions_total: int = cfg["max_position_embeddings"]
        # RoBERTa: token t (of the real ones) reads position padding_idx + 1 + t
        self.padding_idx = int(config.get("pad_token_id", dict(layout.defaults).get("pad_token_id", 0)) or 0)
        self.max_length: int = positions_total - (self.padding_idx + 1 if layout.position_offset else 0)
        self.vocab_size: int = cfg["vocab_size"]
        self.num_labels = _num_labels(config, checker.config_where)
        c = checker
        c.prefixes = (layout.prefix, "classifier.", layout.head[0].split(".")[0] + ".")

        emb = layout.prefix + "embeddings."
        width = int(config.get("embedding_size") or hidden) if model_type == "electra" else hidden
        self.word_embeddings = np.ascontiguousarray(
            c.get(emb + "word_embeddings.weight", (self.vocab_size, width)), dtype=_F32)
        positions = c.get(emb + "position_embeddings.weight", (positions_total, width)).astype(_F32)
        if layout.token_types:
            token_types = c.get(emb + "token_type_embeddings.weight", (cfg["type_vocab_size"], width))
            # token_type_ids are all zeros, so type embedding 0 is folded into every position's embedding.
            positions = positions + token_types[0].astype(_F32)
        self.position_embeddings = np.ascontiguousarray(positions)
        self.embeddings_ln = (c.vector(emb + "LayerNorm.weight", width),
                              c.vector(emb + "LayerNorm.bias", width))
        self.embeddings_project: tuple[np.ndarray, np.ndarray] | None = None
        if width != hidden:  # ELECTRA's embeddings_project: embedding width -> hidden width
            self.embeddings_project = (c.weight(layout.prefix + "embeddings_project.weight", (hidden, width)),
                                       c.vector(layout.prefix + "embeddings_project.bias", hidden))

        pruned = _pruned_heads(config)
        self.layers: list[_Layer] = [self._load_layer(c, i, n_heads, cfg["intermediate_size"], pruned.get(i))
                                     for i in range(cfg["num_hidden_layers"])]
        dense, head_act, output = layout.head
        self.pooler_w = c.weight(dense + ".weight", (hidden, hidden))
        self.pooler_b = c.vector(dense + ".bias", hidden)
        self.head_activation = head_act
        self.classifier_w = c.weight(output + ".weight", (self.num_labels, hidden))
        self.classifier_b = c.vector(output + ".bias", self.num_labels)
        self._parameters = c.elements
        c.check_all_used()

    def _load_layer(self, c: _Checker, i: int, n_heads: int, intermediate: int, removed: int | None) -> _Layer:
        hidden, hd, layout = self.hidden_size, self.head_dim, self.layout
        p = f"{layout.prefix}{layout.layers}{i}."

        def name(bert_name: str, suffix: str) -> str:  # BERT's layer-relative name in this family's terms
            return p + layout.layer_name(bert_name) + suffix

        # pruned heads: this layer's head count is what its query projection holds
        query = name("attention.self.query", ".weight")
        rows = c.shape(query, (None, hidden))[0]
        if rows % hd or not hd <= rows <= n_heads * hd:
            raise c.fail(f"tensor {query!r} has shape {(rows, hidden)} but config.json implies "
                         f"{(n_heads * hd, hidden)} ({n_heads} heads of {hd}; a pruned layer keeps 1 to {n_heads})")
        heads = rows // hd
        if removed is not None and heads != n_heads - removed:
            raise c.fail(f"tensor {query!r} holds {heads} heads but config.json's pruned_heads leaves "
                         f"{n_heads - removed} in layer {i}")
        width = heads * hd
        names = [name(f"attention.self.{n}", "") for n in ("query", "key", "value")]
        qkv_w = [c.weight(n + ".weight", (width, hidden)) for n in names]
        qkv_b = [c.vector(n + ".bias", width) for n in names]
        scale = _F32(hd**-0.5)  # folded into the query projection: (x @ Wq + bq) * s == x @ (s Wq) + s bq
        qkv_w[0] = qkv_w[0] * scale
        qkv_b[0] = qkv_b[0] * scale
        # pruned FFN neurons: this layer's width is what intermediate.dense holds, at most the config's
        ffn = c.shape(name("intermediate.dense", ".weight"), (None, hidden))[0]
        if ffn > intermediate:
            raise c.fail(f"tensor {name('intermediate.dense', '.weight')!r} has shape {(ffn, hidden)} but "
                         f"config.json implies at most {(intermediate, hidden)} (intermediate_size {intermediate})")
        return _Layer(
            heads=heads,
            qkv_w=np.ascontiguousarray(np.concatenate(qkv_w, axis=1)),
            qkv_b=np.concatenate(qkv_b),
            attn_out_w=c.weight(name("attention.output.dense", ".weight"), (hidden, width)),
            attn_out_b=c.vector(name("attention.output.dense", ".bias"), hidden),
            attn_ln_w=c.vector(name("attention.output.LayerNorm", ".weight"), hidden),
            attn_ln_b=c.vector(name("attention.output.LayerNorm", ".bias"), hidden),
            ffn_in_w=c.weight(name("intermediate.dense", ".weight"), (ffn, hidden)),
            ffn_in_b=c.vector(name("intermediate.dense", ".bias"), ffn),
            ffn_out_w=c.weight(name("output.dense", ".weight"), (hidden, ffn)),
            ffn_out_b=c.vector(name("output.dense", ".bias"), hidden),
            ffn_ln_w=c.vector(name("output.LayerNorm", ".weight"), hidden),
            ffn_ln_b=c.vector(name("output.LayerNorm", ".bias"), hidden),
        )

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path | str) -> NumpyBert:
        """Load `config.json` + `model.safetensors` from a `save_pretrained` directory."""
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        config = _read_config(config_path)
        if not weights_path.is_file():
            sharded = " (sharded checkpoints are not supported)" if (
                directory / f"{WEIGHTS_FILE}.index.json").is_file() else ""
            raise ArtifactError(f"{weights_path} is missing{sharded}; rebuild the variant")
        try:
            with safe_open(str(weights_path), framework="numpy") as handle:
                names: list[str] = handle.keys()
                shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in names}

                def get(name: str) -> np.ndarray:
                    try:
                        return handle.get_tensor(name)
                    except (SafetensorError, OSError, ValueError, TypeError) as err:
                        raise ArtifactError(f"cannot read tensor {name!r} from {weights_path} ({err}); the "
                                            "file is corrupt or truncated: rebuild the variant") from None

                return cls(config, _Checker(shapes, get, str(weights_path), str(config_path)))
        except (SafetensorError, OSError, ValueError) as err:
            raise ArtifactError(f"cannot read {weights_path} ({err}); the file is corrupt or truncated: "
                                "rebuild the variant") from None

    @classmethod
    def from_tensors(cls, config: Mapping[str, Any], tensors: Mapping[str, np.ndarray],
                     where: str = "<tensors>") -> NumpyBert:
        """Build from an in-memory config dict and {tensor name: array} (same checks as `load`)."""
        shapes = {name: tuple(np.shape(t)) for name, t in tensors.items()}
        return cls(config, _Checker(shapes, lambda name: np.asarray(tensors[name]), where))

    # --- introspection ---------------------------------------------------------------------------

    @property
    def heads(self) -> tuple[int, ...]:
        """Attention heads per layer."""
        return tuple(layer.heads for layer in self.layers)

    @property
    def intermediate_sizes(self) -> tuple[int, ...]:
        """Feed-forward width per layer."""
        return tuple(layer.intermediate for layer in self.layers)

    @property
    def parameters(self) -> int:
        """Parameters read from the checkpoint (what torch's `numel()` sum counts for the same model)."""
        return self._parameters

    @property
    def nbytes(self) -> int:
        """Bytes held by the (float32, pre-transposed) weights."""
        arrays = [self.word_embeddings, self.position_embeddings, *self.embeddings_ln, self.pooler_w,
                  self.pooler_b, self.classifier_w, self.classifier_b]
        arrays += [getattr(layer, f) for layer in self.layers for f in _Layer.__slots__ if f != "heads"]
        arrays += list(self.embeddings_project or ())
        return sum(a.nbytes for a in arrays)

    # --- forward ---------------------------------------------------------------------------------

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
        """float32 (batch, num_labels) logits for int (batch, seq) ids; mask 1 = token, 0 = padding."""
        ids = np.asarray(input_ids)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"input_ids must be a 2-D integer array, got {ids.dtype} {ids.shape}")
        mask = np.ones(ids.shape, dtype=bool) if attention_mask is None else np.asarray(attention_mask) != 0
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask shape {mask.shape} does not match input_ids shape {ids.shape}")
        batch, seq = ids.shape
        if not 0 < seq <= self.max_length:
            raise ValueError(f"sequence length {seq} is not in [1, {self.max_length}] (max_position_embeddings)")
        if batch == 0:
            return np.zeros((0, self.num_labels), dtype=_F32)
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"input_ids must be in [0, {self.vocab_size})")

        x = self.word_embeddings[ids.reshape(-1)]  # (batch * seq, hidden): every matmul is one 2-D GEMM
        x = x.reshape(batch, seq, -1)
        if self.layout.position_offset:  # RoBERTa: real tokens count from padding_idx + 1, padding stays at it
            real = ids != self.padding_idx
            x += self.position_embeddings[np.cumsum(real, axis=1) * real + self.padding_idx]
        else:
            x += self.position_embeddings[:seq]
        x = layer_norm(x.reshape(batch * seq, -1), *self.embeddings_ln, self.eps)
        if self.embeddings_project is not None:
            x = x @ self.embeddings_project[0] + self.embeddings_project[1]
        masked = ~mask[:, None, None, :]  # (batch, 1, 1, keys)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = self._layer(layer, x, batch, seq, masked, cls_only=i == last)
        cls = x.reshape(batch, -1, self.hidden_size)[:, 0]
        pooled = cls @ self.pooler_w + self.pooler_b
        if self.head_activation == "tanh":  # BERT's pooler, RoBERTa's head
            np.tanh(pooled, out=pooled)
        else:  # ELECTRA's head: GELU; DistilBERT's pre_classifier: ReLU
            ACTIVATIONS[self.head_activation](pooled)
        return (pooled @ self.classifier_w + self.classifier_b).astype(_F32, copy=False)

    __call__ = logits

    def _layer(self, layer: _Layer, x: np.ndarray, batch: int, seq: int, masked: np.ndarray,
               cls_only: bool) -> np.ndarray:
        """One encoder layer on x (batch * seq, hidden). With `cls_only` (the last layer: only the [CLS]
        vector reaches the pooler) queries, attention output and feed-forward run for position 0 only."""
        heads, hd = layer.heads, self.head_dim
        width = heads * hd
        if cls_only:
            keys_values = x @ layer.qkv_w[:, width:]
            keys_values += layer.qkv_b[width:]
            keys_values = keys_values.reshape(batch, seq, 2, heads, hd)
            key, value = keys_values[:, :, 0], keys_values[:, :, 1]
            x = x.reshape(batch, seq, -1)[:, 0]
            query = x @ layer.qkv_w[:, :width]
            query += layer.qkv_b[:width]
            query = query.reshape(batch, 1, heads, hd)
            n_queries = 1
        else:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            qkv = qkv.reshape(batch, seq, 3, heads, hd)
            query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
            n_queries = seq
        # (batch, heads, queries, hd) @ (batch, heads, hd, keys) -> (batch, heads, queries, keys)
        scores = query.transpose(0, 2, 1, 3) @ key.transpose(0, 2, 3, 1)
        np.copyto(scores, _MASKED, where=masked)
        probs = softmax_(scores)
        context = probs @ value.transpose(0, 2, 1, 3)  # (batch, heads, queries, hd)
        context = context.transpose(0, 2, 1, 3).reshape(batch * n_queries, width)
        attended = context @ layer.attn_out_w
        attended += layer.attn_out_b
        attended += x
        x = layer_norm(attended, layer.attn_ln_w, layer.attn_ln_b, self.eps)
        inner = x @ layer.ffn_in_w
        inner += layer.ffn_in_b
        self.activation(inner)
        out = inner @ layer.ffn_out_w
        out += layer.ffn_out_b
        out += x
        return layer_norm(out, layer.ffn_ln_w, layer.ffn_ln_b, self.eps)


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ArtifactError(f"{path} is missing; rebuild the variant")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path} is corrupt ({err}); rebuild the variant") from None
    if not isinstance(config, dict):
        raise ArtifactError(f"{path} is not a JSON object; rebuild the variant")
    return config
