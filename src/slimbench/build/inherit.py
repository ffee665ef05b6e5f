"""A narrower student inherits a teacher's layers (Minitron / DynaBERT-style width reduction):
the residual stream is mapped through a basis of the teacher's width (its PCA or its most active
channels), the most important attention heads and FFN neurons are kept, and the LayerNorms,
pooler and classifier follow the same basis. Importance is measured on a calibration pass of
the teacher (activation-based: a head's or neuron's mean contribution to its layer's output)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from slimbench.errors import BuildError
from slimbench.spec.schema import WIDTH_BASES as BASES


@dataclass
class Importance:
    """Per teacher layer: heads [n_heads], FFN neurons [intermediate]; and per channel of the
    residual stream, the mean |value| and (if asked) the hidden states themselves, for a PCA."""

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]
    channels: torch.Tensor
    states: torch.Tensor | None


@torch.no_grad()
def importance(teacher: Any, seqs: Sequence[Sequence[int]], batch_size: int = 32, states: bool = True) -> Importance:
    """Activation-based importance from running `teacher` over the token-id sequences `seqs`;
    `states`: keep every hidden state too (the `states` basis needs them; ~100 MB for 512 texts)."""
    from slimbench.build.train import collate

    enc = teacher.base_model.encoder
    cfg = teacher.config
    n_heads, head_dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    heads = [torch.zeros(n_heads) for _ in enc.layer]
    neurons = [torch.zeros(cfg.intermediate_size) for _ in enc.layer]
    channels = torch.zeros(cfg.hidden_size)
    kept_states: list[torch.Tensor] = []
    mask: torch.Tensor = torch.ones(1)
    hooks = []

    def real(x: torch.Tensor) -> torch.Tensor:
        return x[mask.bool()]  # [tokens, width]: padding left out

    def on_context(i: int, dense: Any) -> Any:
        w = dense.weight.view(cfg.hidden_size, n_heads, head_dim)  # [out, head, dim]

        def hook(_m: Any, args: tuple[torch.Tensor, ...]) -> None:
            ctx = real(args[0]).view(-1, n_heads, head_dim)
            heads[i].add_(torch.einsum("thd,ohd->tho", ctx, w).norm(dim=-1).sum(0))
        return hook

    def on_ffn(i: int, down: Any) -> Any:
        col = down.weight.norm(dim=0)

        def hook(_m: Any, _a: Any, out: torch.Tensor) -> None:
            neurons[i].add_(real(out).abs().sum(0) * col)
        return hook

    def on_state(_m: Any, _a: Any, out: torch.Tensor) -> None:
        x = real(out)
        channels.add_(x.abs().sum(0))
        if states:
            kept_states.append(x)

    for i, layer in enumerate(enc.layer):
        hooks.append(layer.attention.output.dense.register_forward_pre_hook(on_context(i, layer.attention.output.dense)))
        hooks.append(layer.intermediate.register_forward_hook(on_ffn(i, layer.output.dense)))
        hooks.append(layer.output.LayerNorm.register_forward_hook(on_state))
    hooks.append(teacher.base_model.embeddings.LayerNorm.register_forward_hook(on_state))
    was_training = teacher.training
    teacher.eval()
    try:
        for start in range(0, len(seqs), batch_size):
            ids, mask = collate(seqs, range(start, min(start + batch_size, len(seqs))))
            teacher(input_ids=ids, attention_mask=mask)
    finally:
        for h in hooks:
            h.remove()
        teacher.train(was_training)
    return Importance(heads, neurons, channels, torch.cat(kept_states) if states else None)


def basis(how: str, teacher_width: int, student_width: int, *, word: torch.Tensor | None = None,
          imp: Importance | None = None) -> torch.Tensor:
    """[teacher width, student width], orthonormal columns: the student's residual stream is the
    teacher's multiplied by it. `pca`: principal directions of the (kept) word embeddings;
    `states`: of the teacher's hidden states on the calibration text; `select`: the
    `student_width` channels of largest mean |hidden state| (a column of the identity each)."""
    from slimbench.build.compress import pca_projection

    if how not in BASES:
        raise BuildError(f"init.width must be one of {', '.join(BASES)}, got {how!r}")
    if student_width > teacher_width:
        raise BuildError(f"init.width: a student of width {student_width} is wider than its teacher ({teacher_width})")
    if how == "select":
        assert imp is not None
        keep = torch.sort(torch.topk(imp.channels, student_width).indices).values
        return torch.eye(teacher_width)[:, keep]
    source = word if how == "pca" else (imp.states if imp is not None else None)
    assert source is not None
    _, comps = pca_projection(source.numpy(), student_width)
    return torch.from_numpy(comps.T.copy()).float()


def _layer_norm(t: Any, s: Any, u: torch.Tensor) -> None:
    """The student's LayerNorm gain and bias: the teacher's seen through the basis."""
    s.weight.copy_((u * u * t.weight[:, None]).sum(0))
    s.bias.copy_(t.bias @ u)


def kept_heads(scores: torch.Tensor, n: int) -> list[int]:
    """The `n` most important heads, in the teacher's order."""
    return sorted(torch.topk(scores, n).indices.tolist())


@torch.no_grad()
def inherit_layer(t: Any, s: Any, u: torch.Tensor, head_scores: torch.Tensor, neuron_scores: torch.Tensor,
                  t_heads: int, s_heads: int) -> dict[str, Any]:
    """Student layer `s` from teacher layer `t` through basis `u`. A student head of dimension
    k × the teacher's is k of the teacher's most important heads side by side; the FFN keeps
    the student's number of most important neurons. Returns what was kept."""
    t_dim, s_width = u.shape
    t_head_dim, s_head_dim = t_dim // t_heads, s_width // s_heads
    if s_head_dim % t_head_dim:
        raise BuildError(f"init.width: a student head of {s_head_dim} dims cannot be made of teacher heads of {t_head_dim}")
    group = s_head_dim // t_head_dim
    if s_heads * group > t_heads:
        raise BuildError(f"init.width: the student needs {s_heads * group} teacher heads, the teacher has {t_heads}")
    heads = kept_heads(head_scores, s_heads * group)
    rows = torch.tensor([h * t_head_dim + d for h in heads for d in range(t_head_dim)])
    ta, sa = t.attention, s.attention
    for name in ("query", "key", "value"):
        tw, sw = getattr(ta.self, name), getattr(sa.self, name)
        sw.weight.copy_(tw.weight[rows] @ u)
        sw.bias.copy_(tw.bias[rows])
    # q.k of a grouped head sums its teacher heads' dot products, scaled by 1/sqrt(student head dim)
    # instead of 1/sqrt(teacher head dim): scale the queries back so each term keeps its logit.
    scale = (s_head_dim / t_head_dim) ** 0.5
    sa.self.query.weight.mul_(scale)
    sa.self.query.bias.mul_(scale)
    sa.output.dense.weight.copy_(u.T @ ta.output.dense.weight[:, rows])
    sa.output.dense.bias.copy_(ta.output.dense.bias @ u)
    _layer_norm(ta.output.LayerNorm, sa.output.LayerNorm, u)
    n = s.intermediate.dense.weight.shape[0]
    neurons = torch.sort(torch.topk(neuron_scores, n).indices).values
    s.intermediate.dense.weight.copy_(t.intermediate.dense.weight[neurons] @ u)
    s.intermediate.dense.bias.copy_(t.intermediate.dense.bias[neurons])
    s.output.dense.weight.copy_(u.T @ t.output.dense.weight[:, neurons])
    s.output.dense.bias.copy_(t.output.dense.bias @ u)
    _layer_norm(t.output.LayerNorm, s.output.LayerNorm, u)
    return {"heads": heads, "neurons": int(n)}


@torch.no_grad()
def inherit(teacher: Any, student: Any, layers: Sequence[int], u: torch.Tensor, imp: Importance,
            rows: torch.Tensor) -> list[dict[str, Any]]:
    """Embeddings (vocabulary rows `rows`), the listed teacher layers, pooler and classifier of
    `teacher` into the narrower `student` through basis `u`."""
    te, se = teacher.base_model.embeddings, student.base_model.embeddings
    npos = se.position_embeddings.weight.shape[0]
    se.word_embeddings.weight.copy_(te.word_embeddings.weight[rows] @ u)
    se.position_embeddings.weight.copy_(te.position_embeddings.weight[:npos] @ u)
    se.token_type_embeddings.weight.copy_(te.token_type_embeddings.weight @ u)
    _layer_norm(te.LayerNorm, se.LayerNorm, u)
    tc, sc = teacher.config, student.config
    kept = [inherit_layer(teacher.base_model.encoder.layer[i], student.base_model.encoder.layer[k], u,
                          imp.heads[i], imp.neurons[i], tc.num_attention_heads, sc.num_attention_heads)
            for k, i in enumerate(layers)]
    tp, sp = getattr(teacher.base_model, "pooler", None), getattr(student.base_model, "pooler", None)
    if tp is not None and sp is not None:
        sp.dense.weight.copy_(u.T @ tp.dense.weight @ u)
        sp.dense.bias.copy_(tp.dense.bias @ u)
    student.classifier.weight.copy_(teacher.classifier.weight @ u)
    student.classifier.bias.copy_(teacher.classifier.bias)
    return kept
