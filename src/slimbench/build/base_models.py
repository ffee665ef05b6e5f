"""Where a base model comes from: the pinned MiniLM, a local checkpoint directory, or (only when
asked for, with network) a hub id. Never `trust_remote_code`, never a pickle."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from slimbench.errors import BuildError

HUB_PREFIX = "hub:"
WEIGHT_FILES = ("model.safetensors",)


def resolve(base: str) -> Path:
    """A directory holding config.json, safetensors weights and a tokenizer, for `base`."""
    if base == "minilm":
        from slimbench.cache.assets import base_model_dir

        return base_model_dir()
    if base.startswith(HUB_PREFIX):
        return _download_from_hub(base[len(HUB_PREFIX):])
    path = Path(base).expanduser()
    if not path.is_dir():
        raise BuildError(f"base model {base!r} is not a directory; give a checkpoint directory, 'minilm' "
                         f"(the pinned default) or '{HUB_PREFIX}ORG/NAME' to download from the hub")
    check_checkpoint(path)
    return path.resolve()


def check_checkpoint(path: Path) -> None:
    """Fail early, naming the missing file, if `path` is not a usable checkpoint."""
    if not (path / "config.json").is_file():
        raise BuildError(f"{path} has no config.json; it is not a Hugging Face checkpoint directory")
    try:
        config = json.loads((path / "config.json").read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BuildError(f"{path / 'config.json'} is not valid JSON ({err})") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise BuildError(f"{path / 'config.json'} has no model_type")
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        found = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        hint = f" (found {found}: pickled weights are never loaded; convert them to safetensors)" if found else ""
        raise BuildError(f"{path} has no model.safetensors{hint}")
    if not (path / "tokenizer.json").is_file() and not (path / "vocab.txt").is_file():
        raise BuildError(f"{path} has neither tokenizer.json nor vocab.txt; save the tokenizer with the model")


def tokenizer_json(path: Path) -> str:
    """The checkpoint's fast-tokenizer JSON, built from a WordPiece vocab.txt when there is none."""
    if (path / "tokenizer.json").is_file():
        try:
            return (path / "tokenizer.json").read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BuildError(f"{path / 'tokenizer.json'} is not UTF-8 text; it is corrupt") from None
    from tokenizers.implementations import BertWordPieceTokenizer

    lower = True
    cfg = path / "tokenizer_config.json"
    if cfg.is_file():
        lower = bool(json.loads(cfg.read_text()).get("do_lower_case", True))
    return BertWordPieceTokenizer(str(path / "vocab.txt"), lowercase=lower)._tokenizer.to_str()


def fingerprint(path: Path) -> str:
    """sha256 over config.json and the weights: a cached build is reused only for the same model."""
    h = hashlib.sha256()
    for name in ("config.json", *WEIGHT_FILES, "tokenizer.json", "vocab.txt"):
        f = path / name
        if f.is_file():
            h.update(name.encode())
            with open(f, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
    return h.hexdigest()


def classification_head(path: Path, num_labels: int, label_groups: dict[str, Any] | None = None) -> bool:
    """Whether the checkpoint already is a sequence classifier with `num_labels` outputs -- and, for a
    multi-label dataset, heads for exactly its `label_groups` (the table its config.json holds, as
    slimbench saves it); a multi-label checkpoint is no single-label classifier."""
    config: dict[str, Any] = json.loads((path / "config.json").read_text())
    archs = config.get("architectures") or []
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 2
    return (any(a.endswith("ForSequenceClassification") for a in archs) and int(labels) == num_labels
            and config.get("label_groups") == label_groups)


def _download_from_hub(repo_id: str) -> Path:
    """The one code path that may use the network, and only because a hub id was asked for."""
    code = ("from huggingface_hub import snapshot_download; "
            f"print(snapshot_download({repo_id!r}, allow_patterns=['*.json', '*.safetensors', 'vocab.txt']))")
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"could not download {repo_id!r} from the hub: {last} -- without network, download "
                         "the checkpoint elsewhere and pass its directory instead")
    path = Path(proc.stdout.strip().splitlines()[-1])
    check_checkpoint(path)
    return path
