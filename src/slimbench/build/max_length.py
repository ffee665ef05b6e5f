"""How many tokens every variant reads: `--max-length N|auto` (or `max-length` in [tool.slimbench]).

Each spec carries its own `max_length` (the default zoo: 64 tokens, the ultra-light students 32,
sized for short movie-review sentences). A checkpoint trained on longer texts would be scored on
their first 64 tokens, so for a dataset file of your own the default is `auto`: the length that
covers 99 % of the training texts (special tokens included, rounded up to a multiple of 8), capped
by the checkpoint's position table. `N` fixes it; the built-in datasets keep the specs' lengths
unless asked. The length replaces every spec's `max_length` (and a student's position table where
it is shorter), so it is part of each artifact's spec hash: another length is another build.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from slimbench.data import BUILT_IN_DATASETS as BUILT_IN_DATASETS  # the datasets whose lengths the specs know
from slimbench.errors import BuildError, SpecError
from slimbench.spec.zoo import Zoo

AUTO = "auto"
COVERED = 0.99  # share of the training texts `auto` reads whole
MULTIPLE = 8
LIMITS = (8, 512)  # a spec's max_length bounds (slimbench.spec.zoo)


def parse(value: Any) -> int | str | None:
    """None (the default), "auto", or a token count within LIMITS; anything else is refused."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text == AUTO:
        return AUTO
    try:
        n = int(text)
    except ValueError:
        n = None
    if n is None or str(n) != text or not LIMITS[0] <= n <= LIMITS[1]:
        raise SpecError(f"--max-length must be `auto` or a whole number of tokens in {LIMITS[0]}..{LIMITS[1]}, "
                        f"got {value!r}")
    return n


def default_for(dataset: str) -> str | None:
    """`auto` for a dataset of your own, the specs' own lengths for the built-in ones."""
    return None if dataset in BUILT_IN_DATASETS else AUTO


def covering_length(lengths: Sequence[int], share: float = COVERED) -> int:
    """The smallest multiple of MULTIPLE that holds `share` of `lengths` (tokens per text)."""
    if not lengths:
        return LIMITS[0]
    ordered = sorted(lengths)
    need = ordered[max(0, math.ceil(share * len(ordered)) - 1)]  # at least `share` of the texts are this long or shorter
    return max(LIMITS[0], MULTIPLE * math.ceil(need / MULTIPLE))


def checkpoint_limit(directory: Path) -> int:
    """The longest input `directory`'s position table takes (RoBERTa's positions start after its
    padding id), and at most LIMITS[1]."""
    try:
        config = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return LIMITS[1]
    limit = config.get("max_position_embeddings") or LIMITS[1]
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        limit -= int(config.get("pad_token_id") or 1) + 1
    return max(LIMITS[0], min(LIMITS[1], int(limit)))


def token_lengths(checkpoint: Path, texts: Sequence[str]) -> list[int]:
    """Tokens per text under `checkpoint`'s tokenizer, special tokens included, untruncated."""
    from tokenizers import Tokenizer

    from slimbench.build.base_models import tokenizer_json

    try:
        tok = Tokenizer.from_str(tokenizer_json(Path(checkpoint)))
    except BuildError:
        raise
    except Exception as err:  # the Rust tokenizer's own parse errors
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BuildError(f"{Path(checkpoint) / 'tokenizer.json'} is not a tokenizer the tokenizers library reads "
                         f"({first}); save the checkpoint's tokenizer again") from None
    return untruncated_lengths(tok, texts)


def untruncated_lengths(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Tokens per text under a `tokenizers.Tokenizer`, special tokens included, with its truncation
    and padding turned off."""
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return [len(e.ids) for e in tokenizer.encode_batch(list(texts))]


def with_max_length(zoo: Zoo, n: int) -> Zoo:
    """Every spec of `zoo` reading `n` tokens; a student's own position table grows to hold them."""
    specs = []
    for spec in zoo.specs.values():
        arch = dict(spec.architecture)
        if arch.get("max_position_embeddings", n) < n:
            arch["max_position_embeddings"] = n
        specs.append(dataclasses.replace(spec, max_length=n, architecture=arch))
    return Zoo(specs)


def resolve(value: int | str, base_dir: Path, train_texts: Sequence[str],
            log: Callable[[str], None]) -> int:
    """The token count `value` stands for, given the base checkpoint and the training texts."""
    limit = checkpoint_limit(base_dir)
    if value == AUTO:
        lengths = token_lengths(base_dir, train_texts)
        wanted = covering_length(lengths)
        n = min(wanted, limit)
        cut = sum(length > n for length in lengths) / max(1, len(lengths))
        log(f"max length: {n} tokens (--max-length auto: covers {1 - cut:.1%} of the {len(lengths):,} training "
            f"texts{'; capped by the checkpoint' if wanted > limit else ''})")
        return n
    assert isinstance(value, int)
    if value > limit:
        raise SpecError(f"--max-length {value}: the checkpoint {base_dir} reads at most {limit} tokens "
                        "(max_position_embeddings in its config.json)")
    return value
