"""How many tokens every variant reads: `--max-length N|auto`, auto by default for a dataset of your
own (known truths: texts of known token counts under the tiny WordPiece tokenizer)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from slimbench.build import max_length as lengths
from slimbench.build.context import default_context
from slimbench.errors import SpecError
from slimbench.spec.zoo import Zoo
from slimbench.testing import make_tiny_checkpoint, tiny_zoo_specs, write_specs


@pytest.mark.parametrize("value, want", [(None, None), ("auto", "auto"), (" AUTO ", "auto"), ("128", 128), (64, 64),
                                         ("8", 8), ("512", 512)])
def test_parse_takes_auto_or_a_token_count(value, want):
    assert lengths.parse(value) == want


@pytest.mark.parametrize("value", ["0", "7", "513", "12.5", "nan", "inf", "", "-64", "64 tokens", "1e2"])
def test_parse_refuses_anything_else_naming_the_flag(value):
    with pytest.raises(SpecError, match=r"--max-length must be `auto` or a whole number of tokens in 8\.\.512"):
        lengths.parse(value)


def test_the_covering_length_holds_99_percent_rounded_up_to_8():
    assert lengths.covering_length([10] * 99 + [300]) == 16  # the one long text is the 1 % left out
    assert lengths.covering_length([10] * 98 + [300] * 2) == 304  # 2 % are long: they must fit
    assert lengths.covering_length([3, 4]) == 8  # never under 8
    assert lengths.covering_length([]) == 8


def test_the_checkpoint_limit_comes_from_its_position_table(tmp_path):
    def config(**values):
        (tmp_path / "config.json").write_text(json.dumps(values))
        return lengths.checkpoint_limit(tmp_path)

    assert config(model_type="bert", max_position_embeddings=512) == 512
    assert config(model_type="bert", max_position_embeddings=64) == 64
    assert config(model_type="roberta", max_position_embeddings=514, pad_token_id=1) == 512
    assert config(model_type="bert", max_position_embeddings=4096) == 512  # a spec's own bound


def test_every_spec_reads_the_length_and_a_student_position_table_grows(tmp_path):
    zoo = Zoo.load(write_specs(tmp_path / "m", [
        {"name": "standard", "base": "minilm", "train": {"method": "finetune"}, "max_length": 64},
        {"name": "small", "source": "standard", "train": {"method": "distill"}, "max_length": 32,
         "architecture": {"num_hidden_layers": 1, "max_position_embeddings": 32}},
    ]))
    longer = lengths.with_max_length(zoo, 128)
    assert {s.name: s.max_length for s in longer.specs.values()} == {"standard": 128, "small": 128}
    assert longer.get("small").architecture["max_position_embeddings"] == 128
    assert longer.spec_hash("standard") != zoo.spec_hash("standard")  # another length, another artifact
    shorter = lengths.with_max_length(zoo, 16)
    assert shorter.get("small").architecture["max_position_embeddings"] == 32  # only ever grown


@pytest.fixture(scope="module")
def long_texts(tmp_path_factory):
    """A tiny checkpoint and a CSV whose texts are 40 words long (a few are 2 words)."""
    root = tmp_path_factory.mktemp("long")
    base = make_tiny_checkpoint(root / "base")
    data = root / "long.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        for i in range(200):
            good = i % 2 == 0
            words = ("a good film " if good else "a bad film ") * 13 + "."  # 40 tokens
            w.writerow(["fine" if i % 50 == 0 else words, "pos" if good else "neg"])
    models = write_specs(root / "models", tiny_zoo_specs(base))
    return base, data, models


def _context(long_texts, tmp_path, **kwargs):
    base, data, models = long_texts
    said: list[str] = []
    ctx = default_context(Zoo.load(models), root=tmp_path, log=said.append, dataset=str(data), base=str(base),
                          text_column="review", label_column="sentiment", **kwargs)
    return ctx, said


def test_a_dataset_of_your_own_is_read_whole_by_default(long_texts, tmp_path):
    base, _, _ = long_texts
    ctx, said = _context(long_texts, tmp_path)
    token_counts = lengths.token_lengths(base, [e.text for e in ctx.splits.train])
    assert max(token_counts) == 42  # 40 words + [CLS] and [SEP]
    assert {s.max_length for s in ctx.zoo.specs.values()} == {48}  # the spec said 16
    assert any(line.startswith("max length: 48 tokens (--max-length auto: covers 100.0% of the") for line in said)


def test_a_given_length_wins_and_one_past_the_checkpoint_is_refused(long_texts, tmp_path):
    ctx, _ = _context(long_texts, tmp_path, max_length="24")
    assert {s.max_length for s in ctx.zoo.specs.values()} == {24}
    with pytest.raises(SpecError, match=r"--max-length 100: the checkpoint .* reads at most 64 tokens"):
        _context(long_texts, tmp_path, max_length=100)


def test_auto_is_capped_by_the_checkpoint(long_texts, tmp_path):
    base, data, models = long_texts
    longer = tmp_path / "longer.csv"
    longer.write_text("review,sentiment\n" + "".join(f"{'a good film ' * 40},{'pos' if i % 2 else 'neg'}\n"
                                                     for i in range(60)))
    said: list[str] = []
    ctx = default_context(Zoo.load(models), root=tmp_path, log=said.append, dataset=str(longer), base=str(base),
                          text_column="review", label_column="sentiment")
    assert {s.max_length for s in ctx.zoo.specs.values()} == {64}
    assert any("capped by the checkpoint" in line for line in said)


def test_the_built_in_datasets_keep_the_specs_lengths(long_texts, tmp_path):
    base, _, models = long_texts
    ctx = default_context(Zoo.load(models), root=tmp_path, log=lambda s: None, dataset="synthetic", base=str(base))
    assert ctx.zoo.specs == Zoo.load(models).specs


def test_the_project_file_may_give_it_as_a_number(tmp_path):
    from slimbench.commands.options import project_config

    (tmp_path / "slimbench.toml").write_text("max-length = 128\n")
    assert project_config(tmp_path).values == {"max-length": "128"}


def test_the_command_line_refuses_a_bad_length_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "slimbench.cli", "list", "--max-length", "lots",
                           "--cache", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].endswith("--max-length must be `auto` or a whole number of tokens "
                                                         "in 8..512, got 'lots'"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_python_api_passes_it_to_the_measuring_run(tmp_path, monkeypatch):
    import slimbench.api as api

    seen: list[list[str]] = []
    monkeypatch.setattr(api, "_stream", lambda cmd, env, log: seen.append(cmd) or 1)
    with pytest.raises(api.RunError, match="wrote no results"):
        api.run(dataset="synthetic", max_length=128, out=tmp_path / "out", log=None)
    cmd = seen[0]
    assert cmd[cmd.index("--slimbench-max-length") + 1] == "128"
