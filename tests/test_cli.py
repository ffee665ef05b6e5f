"""The command line: helpful --help, one clear line and a non-zero exit on bad input, never a
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slimbench.cli import main

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slimbench.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.slow
def test_help_lists_every_command():
    out = cli("--help")
    assert out.returncode == 0
    for command in ("list", "build", "sweep", "report", "gate", "baseline"):
        assert command in out.stdout
    build_help = cli("build", "--help").stdout
    assert "--variants" in build_help and "--force" in build_help and "--seed" in build_help


@pytest.mark.slow
def test_a_seed_for_variants_that_do_not_train_is_one_line(tmp_path):
    out = cli("build", "--variants", "quantized,onnx", "--seed", "1", "--cache", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "slimbench: error: --seed 1: none of quantized, onnx trains (fine-tune or distil); name a variant "
        "with a [train] method"]


@pytest.mark.slow
def test_unknown_variant_is_one_line(tmp_path):
    out = cli("build", "--variants", "standrad", "--cache", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "slimbench: error: unknown variant 'standrad'; known variants: standard, light, ultra-light, "
        "quantized, onnx, onnx-int8, onnx-static-int8, ultra-light-onnx-int8, pruned-heads, sparse-50, "
        "standard-numpy, ultra-light-numpy"]
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_invalid_spec_is_one_line(tmp_path):
    (tmp_path / "bad.toml").write_text('name = "x"\nsource = "standard"\n[architecture]\nnum_hidden_layers = -1\n')
    assert main(["list", "--models", str(tmp_path)]) == 2


@pytest.mark.parametrize("content", [b"", b"{", os.urandom(256), b'{"benchmarks": []}', b"[1, 2]"])
@pytest.mark.slow
def test_garbage_results_files_never_give_a_traceback(tmp_path, content):
    f = tmp_path / "results.json"
    f.write_bytes(content)
    for args in (["report", str(f), "--out", str(tmp_path / "out")],
                 ["gate", "--baseline", str(f), str(f)]):
        out = cli(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.startswith("slimbench: error:")


def test_the_shared_inputs_are_declared_once_for_every_entry_point():
    """`slimbench build`, `slimbench compare` and the pytest plugin take the same inputs, with the
    same defaults, from one table (`slimbench.commands.options`)."""
    import argparse

    from slimbench.cli import build_parser
    from slimbench.commands.options import INPUTS

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("build", "list", "sweep", "plan", "compare"):
        dests = {a.dest: a for a in sub.choices[command]._actions}
        for flag, _, kwargs in INPUTS:
            if command == "compare" and flag == "models":
                continue  # each side of a compare has its own models/
            action = dests[flag.replace("-", "_")]
            # parsed default None: a flag not given leaves the choice to the project's file or the built-in default
            assert action.default is None and action.help == kwargs["help"], (command, flag)

    class Group:
        def __init__(self):
            self.options = {}

        def addoption(self, name, **kwargs):
            self.options[name] = kwargs

    class Parser:
        group = Group()

        def getgroup(self, *args):
            return self.group

    from slimbench.plugin import pytest_addoption

    pytest_addoption(Parser())
    for flag, _, kwargs in INPUTS:
        assert Parser.group.options[f"--slimbench-{flag}"] == {"default": None, **kwargs}, flag


def test_every_subcommand_formats_its_help():
    """`--help` of each subcommand renders (a stray `%` in a help string breaks only that page)."""
    import argparse

    from slimbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert len(sub.choices) >= 9
    for name, p in sub.choices.items():
        text = p.format_help()
        assert f"usage: slimbench {name}" in text.replace("\n", " ")
