"""The synthetic sentiment task and its tiny WordPiece tokenizer, built from a config (seed 000 style).

The `synthetic` dataset (`--dataset synthetic`) and the calibration variants' tokenizer come from
here; nothing downloads anything. Imports nothing from slimbench, so both the data layer and the
build can use it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

POSITIVE = ("good", "great", "superb", "lovely", "fun")
NEGATIVE = ("bad", "awful", "dull", "boring", "weak")
FILLER = ("the", "movie", "film", "plot", "actor", "was", "is", "a", "very", "and", "story", "scene",
          "music", "it", "quite", "this", "script", "cast", "really", "ending", "of", "with", "some")
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def tiny_vocab() -> list[str]:
    words = sorted(set(POSITIVE + NEGATIVE + FILLER))
    return [*SPECIALS, *words, *LETTERS, *("##" + c for c in LETTERS), ".", ","]


def write_tiny_tokenizer(path: Path, vocab: list[str] | None = None) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = vocab or tiny_vocab()
    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(list(SPECIALS))
    tok.save(str(path))


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """Sentences of filler words plus one or two sentiment words that decide the label (1 positive)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    while len(out) < n:
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, size=int(rng.integers(3, 10))))
        cue = POSITIVE if label else NEGATIVE
        for _ in range(int(rng.integers(1, 3))):
            words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(cue)))
        text = " ".join(words)
        if text not in seen:
            seen.add(text)
            out.append((text, label))
    return out
