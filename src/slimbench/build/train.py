"""Training: fine-tuning and knowledge distillation of sequence classifiers, on CPU.

Batches are length-bucketed and padded per batch (snippets are short, so this is several times
faster than padding to max_length). The epoch kept is the one with the best validation accuracy;
the test split is never seen here.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from slimbench.labels import LabelGroups
from slimbench.spec.schema import TrainRecipe

Target = int | tuple[int, ...]  # a label, or a multi-label text's index per label group

BUCKET_BATCHES = 50  # batches per length-sorted chunk: mostly-random batches with little padding


@dataclass
class TrainResult:
    best_epoch: int
    best_val_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    autocast: str = "fp32"  # the dtype the steps ran in


def augment(texts: Sequence[str], copies: int, seed: int = 0) -> list[str]:
    """`copies` perturbed versions of each text, for teacher-labelled distillation data.

    Each copy is a random contiguous span of 40-100 % of the words (a phrase of the sentence, as in
    SST's phrase-level labels) with 10 % of its words dropped. The teacher labels them, so the
    student sees the teacher's judgement on many more, shorter inputs.
    """
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for _ in range(copies):
        for text in texts:
            words = text.split()
            if len(words) < 3:
                out.append(text)
                continue
            span = max(2, int(len(words) * rng.uniform(0.4, 1.0)))
            start = int(rng.integers(0, len(words) - span + 1))
            kept = [w for w in words[start : start + span] if rng.random() >= 0.1] or words[start : start + span]
            out.append(" ".join(kept))
    return out


def encode_all(tokenizer: Any, texts: Sequence[str], max_length: int, truncation: str = "right") -> list[list[int]]:
    """Token ids per text (with [CLS]/[SEP]), truncated as the runtime will, unpadded."""
    from slimbench.runtimes.runners import head_tail

    tok = copy.deepcopy(tokenizer)
    tok.no_padding()
    if truncation == "head-tail":
        tok.no_truncation()
        return [head_tail(e.ids, max_length) for e in tok.encode_batch(list(texts))]
    tok.enable_truncation(max_length)
    return [e.ids for e in tok.encode_batch(list(texts))]


def collate(seqs: Sequence[Sequence[int]], idx: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(seqs[i]) for i in idx)
    ids = torch.zeros((len(idx), width), dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        s = seqs[i]
        ids[row, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[row, : len(s)] = 1
    return ids, mask


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(len(lengths))
    chunk = batch_size * BUCKET_BATCHES
    batches: list[np.ndarray] = []
    lens = np.asarray(lengths)
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lens[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def length_ordered_batches(seqs: Sequence[Sequence[int]], batch_size: int) -> list[np.ndarray]:
    """Indexes of `seqs` in batches of similar length (shortest first): little padding per batch."""
    order = np.argsort([len(s) for s in seqs], kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def predict_logits(model: nn.Module, seqs: Sequence[Sequence[int]], batch_size: int = 128) -> np.ndarray:
    """Logits for every sequence, in input order (computed in length order for speed)."""
    return predict_logits_and_cls(model, seqs, batch_size, with_cls=False)[0]


@torch.inference_mode()
def predict_logits_and_cls(model: nn.Module, seqs: Sequence[Sequence[int]], batch_size: int = 128,
                           with_cls: bool = True, desc: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits and (optionally) the last layer's [CLS] hidden state, in input order; with `desc`, a
    progress bar (a teacher pass over tens of thousands of texts takes minutes)."""
    model.eval()
    out = np.zeros((len(seqs), model.config.num_labels), dtype=np.float32)
    cls = np.zeros((len(seqs), model.config.hidden_size), dtype=np.float32) if with_cls else None
    batches = length_ordered_batches(seqs, batch_size)
    for idx in tqdm(batches, desc=desc, unit="batch", leave=False, mininterval=2.0, disable=desc is None):
        ids, mask = collate(seqs, idx)
        res = model(input_ids=ids, attention_mask=mask, output_hidden_states=with_cls)
        out[idx] = res.logits.float().numpy()
        if cls is not None:
            cls[idx] = res.hidden_states[-1][:, 0].float().numpy()
    return out, cls


def accuracy(logits: np.ndarray, labels: Sequence[Target], groups: LabelGroups | None = None) -> float:
    """The share of texts classified right; with label groups, the share with every group right
    (exact match: the figure a multi-label variant is reported by, so the epoch is chosen on it)."""
    if groups is not None:
        return float((groups.decode(logits) == np.asarray(labels)).all(axis=1).mean())
    return float((logits.argmax(-1) == np.asarray(labels)).mean())


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, groups: LabelGroups | None = None) -> torch.Tensor:
    """Cross-entropy; with label groups, the weighted sum of each group's cross-entropy over its
    slice of the logits (labels: one column per group)."""
    if groups is None:
        return F.cross_entropy(logits, labels)
    return sum((w * F.cross_entropy(logits[:, s], labels[:, k])
                for k, (s, w) in enumerate(zip(groups.slices(), groups.weights, strict=True))),
               logits.new_zeros(()))


def fit(
    model: nn.Module,
    lengths: Sequence[int],
    loss_on: Callable[[np.ndarray], torch.Tensor],
    evaluate: Callable[[], float],
    recipe: TrainRecipe,
    desc: str,
    extra_modules: Sequence[nn.Module] = (),
) -> TrainResult:
    """AdamW with linear warm-up and decay over `recipe.epochs`, run for `recipe.epochs_run` of them;
    keeps the weights of the best validation epoch. With
    `recipe.autocast` "bf16" each step's forward pass (student, and a teacher run inside `loss_on`)
    runs under torch's CPU bf16 autocast; weights, gradients, optimizer state and `evaluate` stay fp32."""
    # The training loop reads top to bottom (epochs, batches, evaluation, early stop, best weights):
    # longer than 60 lines on purpose.
    if recipe.autocast not in ("fp32", "bf16"):  # "auto" is resolved by the build (recipes.common.train_recipe)
        raise ValueError(f"fit() needs autocast fp32 or bf16, got {recipe.autocast!r}")
    seed = recipe.seed
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    epochs = recipe.epochs
    batch_size = recipe.batch_size
    steps_per_epoch = -(-len(lengths) // batch_size)
    total = epochs * steps_per_epoch
    warmup = int(recipe.warmup * total)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    named = list(model.named_parameters()) + [(f"extra{k}.{n}", p) for k, m in enumerate(extra_modules)
                                              for n, p in m.named_parameters()]
    params = [
        {"params": [p for n, p in named if not n.endswith(no_decay)],
         "weight_decay": recipe.weight_decay},
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    # fused: one kernel over all parameters instead of a loop of small ops per tensor; the same
    # update, 0.155 -> 0.047 s of standard's 0.85-s fp32 step on the Intel host (evidence: train-speed.md)
    opt = torch.optim.AdamW(params, lr=recipe.lr, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    bf16 = recipe.autocast == "bf16"
    if bf16:
        desc = f"{desc} (bf16 autocast)"
    result = TrainResult(best_epoch=0, best_val_accuracy=-1.0, autocast=recipe.autocast)
    best_state: dict[str, torch.Tensor] | None = None
    start = time.perf_counter()
    shown = f"{epochs}" if recipe.epochs_run == epochs else f"{epochs}, stopping after {recipe.epochs_run}"
    for epoch in range(1, recipe.epochs_run + 1):
        model.train()
        running = 0.0
        bar = tqdm(bucketed_batches(lengths, batch_size, rng), desc=f"{desc} epoch {epoch}/{shown}",
                   unit="batch", leave=False, mininterval=2.0)
        for k, idx in enumerate(bar, start=1):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = loss_on(idx).float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
            opt.step()
            sched.step()
            result.steps += 1
            running += loss.item()
            if k % 20 == 0:
                bar.set_postfix(loss=f"{running / k:.4f}")
        val_acc = evaluate()
        result.history.append({"epoch": epoch, "train_loss": running / max(1, steps_per_epoch),
                               "val_accuracy": val_acc, "seconds": time.perf_counter() - start})
        tqdm.write(f"  {desc} epoch {epoch}/{shown}: train loss {running / max(1, steps_per_epoch):.4f}, "
                   f"val accuracy {val_acc:.4f}")
        if val_acc > result.best_val_accuracy:
            result.best_val_accuracy, result.best_epoch = val_acc, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


def finetune(model: nn.Module, train_seqs: Sequence[Sequence[int]], train_labels: Sequence[Target],
             val_seqs: Sequence[Sequence[int]], val_labels: Sequence[Target], recipe: TrainRecipe,
             desc: str = "finetune", groups: LabelGroups | None = None) -> TrainResult:
    """Cross-entropy fine-tuning on labelled data (with label groups: per group, summed)."""
    labels = torch.tensor(list(train_labels), dtype=torch.long)

    def loss_on(idx: np.ndarray) -> torch.Tensor:
        ids, mask = collate(train_seqs, idx)
        logits = model(input_ids=ids, attention_mask=mask).logits
        return classification_loss(logits, labels[idx], groups)

    return fit(model, [len(s) for s in train_seqs], loss_on,
               lambda: accuracy(predict_logits(model, val_seqs), val_labels, groups), recipe, desc)


def _kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, t: float) -> torch.Tensor:
    return F.kl_div(F.log_softmax(student_logits / t, -1), F.log_softmax(teacher_logits / t, -1),
                    log_target=True, reduction="batchmean") * t * t


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float, groups: LabelGroups | None = None) -> torch.Tensor:
    """alpha*T^2*KL(teacher_T || student_T) + (1-alpha)*CE on labelled rows (label >= 0). With label
    groups (labels: one column per group, -1 on unlabelled rows) both terms are the weighted sums of
    the per-group terms over each group's slice of the logits."""
    t = temperature
    if groups is None:
        kl = _kl(student_logits, teacher_logits, t)
        labelled = labels >= 0
    else:
        kl = sum((w * _kl(student_logits[:, s], teacher_logits[:, s], t)
                  for s, w in zip(groups.slices(), groups.weights, strict=True)), student_logits.new_zeros(()))
        labelled = (labels >= 0).all(dim=1)
    if not bool(labelled.any()):
        return kl
    ce = classification_loss(student_logits[labelled], labels[labelled], groups)
    return alpha * kl + (1 - alpha) * ce


def layer_pairs(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """TinyBERT's uniform layer mapping: student layer k (1..K) learns the output of teacher layer
    round(k * L / K), i.e. the teacher's state at the same relative depth (hidden_states indices)."""
    return [(k, round(k * teacher_layers / student_layers)) for k in range(1, student_layers + 1)]


def hidden_state_loss(student_states: Sequence[torch.Tensor], teacher_states: Sequence[torch.Tensor],
                      pairs: Sequence[tuple[int, int]], projections: Sequence[nn.Module],
                      mask: torch.Tensor) -> torch.Tensor:
    """Mean over `pairs` of the MSE between the projected student states and the teacher's, over the
    real (unpadded) tokens of every position, per hidden unit."""
    keep = mask.unsqueeze(-1).to(student_states[0].dtype)
    tokens = keep.sum().clamp(min=1.0)
    total = student_states[0].new_zeros(())
    for (s, t), proj in zip(pairs, projections, strict=True):
        diff = (proj(student_states[s]) - teacher_states[t]) * keep
        total = total + diff.pow(2).sum() / (tokens * diff.shape[-1])
    return total / len(pairs)


@dataclass
class LayerTeacher:
    """The teacher model run alongside the student for intermediate-layer distillation; `ids` maps
    each student token id to the teacher's id for the same token (None: the same vocabulary)."""

    model: nn.Module
    ids: torch.Tensor | None = None


def distill(student: nn.Module, seqs: Sequence[Sequence[int]], teacher_logits: np.ndarray,
            labels: Sequence[Target], val_seqs: Sequence[Sequence[int]], val_labels: Sequence[Target],
            recipe: TrainRecipe, desc: str = "distill",
            teacher_cls: np.ndarray | None = None, layer_teacher: LayerTeacher | None = None,
            groups: LabelGroups | None = None) -> TrainResult:
    """Distil from cached teacher logits; rows with label -1 are unlabelled transfer data. With
    label groups, the KL and the cross-entropy are taken per group (`distillation_loss`).

    With `hidden_weight` > 0 in the recipe and the teacher's last-layer [CLS] states given, a
    learned projection of the student's [CLS] state is also pulled towards the teacher's (MSE):
    an intermediate-representation signal that a 128-wide student gets nowhere else.

    With `layer_weight` > 0 and `layer_teacher` given (TinyBERT-style intermediate-layer
    distillation), every student layer's hidden states, at every real token, are pulled towards
    the teacher layer at the same relative depth (`layer_pairs`), through a learned projection per
    layer where the widths differ. The teacher runs on each batch (its hidden states for every
    token of every text are too big to cache), which costs one teacher forward pass per step.
    """
    soft = torch.from_numpy(np.asarray(teacher_logits, dtype=np.float32))
    hard = torch.tensor(list(labels), dtype=torch.long)
    t = recipe.temperature
    alpha = recipe.alpha
    beta = recipe.hidden_weight
    target = torch.from_numpy(np.asarray(teacher_cls, dtype=np.float32)) if beta and teacher_cls is not None else None
    proj = nn.Linear(student.config.hidden_size, target.shape[1]) if target is not None else None
    gamma = recipe.layer_weight
    teacher = layer_teacher if gamma else None
    pairs: list[tuple[int, int]] = []
    projections: list[nn.Module] = []
    if teacher is not None:
        teacher.model.eval()
        s_cfg, t_cfg = student.config, teacher.model.config
        pairs = layer_pairs(s_cfg.num_hidden_layers, t_cfg.num_hidden_layers)
        torch.manual_seed(recipe.seed)
        projections = [nn.Identity() if s_cfg.hidden_size == t_cfg.hidden_size
                       else nn.Linear(s_cfg.hidden_size, t_cfg.hidden_size) for _ in pairs]

    def loss_on(idx: np.ndarray) -> torch.Tensor:
        ids, mask = collate(seqs, idx)
        res = student(input_ids=ids, attention_mask=mask, output_hidden_states=proj is not None or teacher is not None)
        loss = distillation_loss(res.logits, soft[idx], hard[idx], t, alpha, groups)
        if proj is not None and target is not None:
            loss = loss + beta * F.mse_loss(proj(res.hidden_states[-1][:, 0]), target[idx])
        if teacher is not None:
            teacher_ids = ids if teacher.ids is None else teacher.ids[ids]
            with torch.no_grad():
                states = teacher.model(input_ids=teacher_ids, attention_mask=mask,
                                       output_hidden_states=True).hidden_states
            loss = loss + gamma * hidden_state_loss(res.hidden_states, states, pairs, projections, mask)
        return loss

    extra = ([proj] if proj is not None else []) + [p for p in projections if isinstance(p, nn.Linear)]
    return fit(student, [len(s) for s in seqs], loss_on,
               lambda: accuracy(predict_logits(student, val_seqs), val_labels, groups), recipe, desc,
               extra_modules=extra)
