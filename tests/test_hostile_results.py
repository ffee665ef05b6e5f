"""Hostile results files, mismatched runs, interrupted runs and internal errors at the command line:
one line naming the file and the entry, a non-zero exit, never a traceback and never a silent verdict."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slimbench import cli
from slimbench.analysis.gate import MismatchError, check_comparable, gate, input_mismatches
from slimbench.analysis.results import ResultsError, compact_samples, load_run, parse_run, results_text
from slimbench.render.report import render_markdown

DATA = Path(__file__).parent / "data"
GOOD = json.loads((DATA / "tiny_zoo_results.json").read_text())
GOLDEN = Path(__file__).parent / "golden" / "report"


def doc() -> dict[str, Any]:
    return copy.deepcopy(GOOD)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def first_latency(d: dict[str, Any]) -> dict[str, Any]:
    return next(b["extra_info"] for b in d["benchmarks"] if b["extra_info"].get("metric") == "latency")


# --- the examples --------------------------------------------------------------------------

def _benchmarks_5(d):
    d["benchmarks"] = 5


def _no_value(d):
    del first_latency(d)["figures"]["p50_s"]["value"]


def _value_fast(d):
    first_latency(d)["figures"]["p50_s"]["value"] = "fast"


def _figures_list(d):
    first_latency(d)["figures"] = [1, 2]


def _sample_string(d):
    first_latency(d)["samples"]["latency_s"][3] = "x"


def _first_latency_bench(d):
    return next(b for b in d["benchmarks"] if b["extra_info"].get("metric") == "latency")


def _samples_in_stats_without_data(d):
    compact_samples(d)
    del _first_latency_bench(d)["stats"]["data"]


def _samples_in_stats_number(d):
    first_latency(d)["samples_in_stats"] = 5


def _failures_dict(d):
    d["slimbench"] = {"schema": 1, "failures": {"a": 1}}


def _machine_str(d):
    d["machine_info"]["slimbench_machine"] = "laptop"


@pytest.mark.parametrize("mutate, message", [
    (_benchmarks_5, r"the file: 'benchmarks' is 5, not a list"),
    (_no_value, r"benchmarks\[\d+\]\.extra_info \(\S+ / latency\): figures\.p50_s has no 'value'"),
    (_value_fast, r"benchmarks\[\d+\]\.extra_info \(\S+ / latency\): figures\.p50_s\.value is 'fast', not a finite number"),
    (_figures_list, r"\(\S+ / latency\): figures is list \[1, 2\], not an object"),
    (_sample_string, r"samples\.latency_s\[3\] is 'x', not a finite number"),
    (_samples_in_stats_without_data, r"benchmarks\[\d+\]: stats\.data is None, but "
                                     r"extra_info\.samples_in_stats says it holds the 'latency_s' samples"),
    (_samples_in_stats_number, r"extra_info\.samples_in_stats is 5, not a sample name"),
    (_failures_dict, r"slimbench\.failures is \{'a': 1\}, not a list"),
    (_machine_str, r"machine_info\.slimbench_machine is str 'laptop', not an object"),
])
def test_wrong_shapes_name_the_file_and_the_entry(tmp_path, capsys, mutate, message):
    d = doc()
    mutate(d)
    f = tmp_path / "results.json"
    f.write_text(json.dumps(d))
    with pytest.raises(ResultsError, match=message) as info:
        load_run(f)
    assert str(f) in str(info.value)
    for args in (["report", str(f), "--out", str(tmp_path / "out"), "--no-plots"],
                 ["gate", "--baseline", str(DATA / "tiny_zoo_results.json"), str(f)]):
        code, err = run_cli(capsys, *args)
        assert code == 2 and err.count("\n") == 1 and err.startswith("slimbench: error: ") and str(f) in err


def test_deeply_nested_and_binary_files_are_one_line(tmp_path, capsys):
    for name, content in (("deep.json", b"[" * 100_000), ("bin.json", bytes(range(256))),
                          ("dir.json", None)):
        f = tmp_path / name
        if content is None:
            f.mkdir()
        else:
            f.write_bytes(content)
        code, err = run_cli(capsys, "report", str(f) if content is not None else str(f), "--out",
                            str(tmp_path / "out"), "--no-plots")
        assert code == 2 and err.startswith("slimbench: error: ") and err.count("\n") == 1, err


# --- fuzz: any results-file shape ends in a report/gate or one line, never a traceback ---------------

HOSTILE_VALUES: list[Any] = [5, -1, 0, "fast", "", None, [], {}, [1, "a"], {"value": "x"}, True, 1e308,
                             float("nan"), float("inf"), -0.0, "9" * 400, [[[[[]]]]]]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):  # the first few items of long sample lists are enough
            out += _paths(v, (*prefix, i))
    return out


def _mutate(d: dict[str, Any], rng: random.Random) -> str:
    paths = _paths(d)[1:]
    ours = [p for p in paths if p[0] == "slimbench" or (p[0] == "benchmarks" and len(p) > 2 and p[2] != "options")]
    path = rng.choice(ours if rng.random() < 0.8 else paths)  # mostly where slimbench reads
    parent = d
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.25:
        del parent[path[-1]]
        return f"del {path}"
    value = copy.deepcopy(rng.choice(HOSTILE_VALUES))
    parent[path[-1]] = value
    return f"{path} = {value!r}"[:200]


@pytest.mark.parametrize("seed", range(60))
def test_fuzzed_results_files(tmp_path, capsys, seed):
    rng = random.Random(seed)
    d = doc()
    what = [_mutate(d, rng) for _ in range(rng.randint(1, 3))]
    f = tmp_path / "fuzzed.json"
    f.write_text(json.dumps(d))
    try:
        run = load_run(f)
    except ResultsError as err:
        assert str(f) in str(err), (what, err)
        return
    render_markdown([run], plots=False)  # must not raise: the shape was accepted
    gate(parse_run(doc(), "baseline.json"), run)
    for args in (["report", str(f), "--out", str(tmp_path / "out"), "--no-plots"],
                 ["gate", "--allow-mismatch", "--baseline", str(DATA / "tiny_zoo_results.json"), str(f)]):
        code, err = run_cli(capsys, *args)
        assert code in (0, 1, 2) and "internal error" not in err, (what, args, err)


# --- interrupted runs: the marker is read, and the report says so ------------------------------------

def test_report_on_an_incomplete_results_file_says_so(tmp_path, capsys):
    d = doc()
    d["slimbench"] = {"schema": 1, "failures": [], "incomplete": True, "reason": "interrupted by Ctrl-C"}
    f = tmp_path / "partial.json"
    f.write_text(json.dumps(d))
    run = load_run(f)
    assert run.incomplete and run.incomplete_reason == "interrupted by Ctrl-C"
    assert not load_run(DATA / "tiny_zoo_results.json").incomplete
    out = tmp_path / "out"
    code, err = run_cli(capsys, "report", str(f), "--out", str(out), "--no-plots")
    assert code == 0
    assert f"slimbench: warning: {f} is marked incomplete (interrupted by Ctrl-C)" in err
    assert "**Incomplete run.**" in (out / "REPORT.md").read_text()
    code, _ = run_cli(capsys, "report", str(f), "--out", str(out), "--no-plots", "--strict")
    assert code == 1
    d["benchmarks"], d["slimbench"]["failures"] = [], []
    f.write_text(json.dumps(d))
    with pytest.raises(ResultsError, match="marked incomplete and holds no measurements"):
        load_run(f)
    d["slimbench"]["incomplete"] = "yes"
    f.write_text(json.dumps(d))
    with pytest.raises(ResultsError, match=r"slimbench\.incomplete is 'yes', not true or false"):
        load_run(f)


# --- the gate refuses runs of another model, dataset or test set -------------------------------------

def _with_context(d: dict[str, Any], **context: Any) -> dict[str, Any]:
    for b in d["benchmarks"]:
        b["extra_info"]["context"].update(context)
    return d


def _test_size(d: dict[str, Any], n: int) -> dict[str, Any]:
    for b in d["benchmarks"]:
        for fig in b["extra_info"]["figures"].values() if b["extra_info"]["metric"] == "accuracy" else ():
            fig["n"] = n
    return d


@pytest.mark.parametrize("change, what", [
    (lambda d: _with_context(d, dataset="movie-snippets"), "dataset: synthetic vs movie-snippets"),
    (lambda d: _test_size(d, 40), "test examples: 121 vs 40"),
    (lambda d: _with_context(d, dataset_fingerprint="ab12"), None),  # only one side says: nothing to compare
])
def test_gate_refuses_mismatched_runs_unless_allowed(tmp_path, capsys, change, what):
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(doc()))
    cur = tmp_path / "current.json"
    cur.write_text(json.dumps(change(doc())))
    b, c = load_run(base), load_run(cur)
    if what is None:
        assert input_mismatches(b, c) == [] and check_comparable(b, c) is None
        return
    assert input_mismatches(b, c) == [what]
    with pytest.raises(MismatchError, match="not measured on the same model and data"):
        check_comparable(b, c)
    code, err = run_cli(capsys, "gate", "--baseline", str(base), str(cur))
    assert code == 2 and what in err and "--allow-mismatch" in err and err.count("\n") == 1
    code = cli.main(["gate", "--allow-mismatch", "--baseline", str(base), str(cur)])
    out = capsys.readouterr().out
    assert code in (0, 1) and f"compared although measured on different inputs ({what})" in out


def test_gate_compares_fingerprints_when_both_runs_record_them(tmp_path):
    b = parse_run(_with_context(doc(), dataset_fingerprint="aa", base="minilm"), "b.json")
    c = parse_run(_with_context(doc(), dataset_fingerprint="bb", base="/my/model"), "c.json")
    assert input_mismatches(b, c) == ["dataset_fingerprint: aa vs bb", "base: minilm vs /my/model"]
    same = parse_run(_with_context(doc(), dataset_fingerprint="aa", base="minilm"), "s.json")
    assert input_mismatches(b, same) == []


# --- an unexpected internal error: one line and where the traceback is ------------------------------

def test_internal_error_is_one_line_with_the_traceback_in_a_file(tmp_path, capsys, monkeypatch):
    import tempfile

    def broken(args):
        return {}["boom"]

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SLIMBENCH_DEBUG", raising=False)
    monkeypatch.setattr(cli, "cmd_list", broken)
    code = cli.main(["list"])
    err = capsys.readouterr().err
    assert code == cli.INTERNAL_ERROR and err.count("\n") == 1
    assert err.startswith("slimbench: internal error: KeyError: 'boom'") and "Traceback" not in err
    path = Path(err.rsplit("traceback is in ", 1)[1].split(" ")[0])
    assert path.parent == tmp_path and "Traceback" in path.read_text() and "def broken" not in err
    assert 'return {}["boom"]' in path.read_text()
    monkeypatch.setenv("SLIMBENCH_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["list"])


def test_environment_errors_are_one_line(tmp_path, capsys):
    locked = tmp_path / "file-not-dir"
    locked.write_text("")
    code, err = run_cli(capsys, "report", str(DATA / "tiny_zoo_results.json"), "--out", str(locked / "x"),
                        "--no-plots")
    assert code == 2 and err.startswith("slimbench: error:") and err.count("\n") == 1


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_figures_are_refused(value):
    d = doc()
    first_latency(d)["figures"]["p50_s"]["value"] = value
    with pytest.raises(ResultsError, match=f"figures.p50_s.value is {value}, not a finite number"):
        parse_run(json.loads(json.dumps(d)))


# --- accuracy counts that cannot be a 2x2 table ----------------------------------------------------

def _accuracy_counts(d: dict[str, Any], variant: str, only_standard: Any, only_variant: Any) -> dict[str, Any]:
    info = next(b["extra_info"] for b in d["benchmarks"]
                if b["extra_info"].get("metric") == "accuracy" and b["extra_info"].get("variant") == variant)
    n = info["figures"]["accuracy"]["n"]
    info["figures"]["only_standard_right"] = {"value": only_standard, "unit": "count", "n": n}
    info["figures"]["only_variant_right"] = {"value": only_variant, "unit": "count", "n": n}
    return d


@pytest.mark.parametrize("counts", [(10**6, 0), (-3, 2), (0, 10**6)])
def test_impossible_accuracy_counts_leave_out_that_interval_only(tmp_path, capsys, counts):
    d = _accuracy_counts(_accuracy_counts(doc(), "light", 1, 0), "quantized", *counts)
    f = tmp_path / "results.json"
    f.write_text(json.dumps(d))
    text = render_markdown([load_run(f)])
    assert "### Accuracy ratios to `standard`, with their uncertainty" in text
    section = text.split("### Accuracy ratios")[1].split("###")[0]
    assert "| `light`" in section and "`quantized`" not in section
    code, _ = run_cli(capsys, "report", str(f), "--out", str(tmp_path / "out"), "--no-plots")
    assert code == 0


def test_samples_written_once_in_stats_read_back_the_same():
    """`compact_samples` keeps a sample list that equals pytest-benchmark's stats.data only there;
    the run read back is the same, measurement for measurement."""
    d = doc()
    assert any(b["stats"].get("data") == b["extra_info"]["samples"].get("latency_s") for b in d["benchmarks"])
    compact = compact_samples(copy.deepcopy(d))
    moved = [b for b in compact["benchmarks"] if b["extra_info"].get("samples_in_stats")]
    assert {b["extra_info"]["metric"]: b["extra_info"]["samples_in_stats"] for b in moved}["latency"] == "latency_s"
    assert all(b["extra_info"]["samples_in_stats"] not in b["extra_info"]["samples"] for b in moved)
    assert len(json.dumps(compact)) < len(json.dumps(d))
    _same_run(parse_run(d), parse_run(compact))
    assert compact_samples(copy.deepcopy(compact)) == compact  # idempotent


def _same_run(before, after):
    """Measurement for measurement the same figures, and the same samples to the nanosecond."""
    assert [(m.variant, m.metric, m.figures, sorted(m.samples)) for m in before.measurements] == \
           [(m.variant, m.metric, m.figures, sorted(m.samples)) for m in after.measurements]
    for a, b in zip(before.measurements, after.measurements, strict=True):
        for key, values in a.samples.items():
            assert np.allclose(values, b.samples[key], rtol=0, atol=0.5e-9), (a.variant, a.metric, key)


def test_written_results_are_compact_and_read_back_the_same(tmp_path):
    """`results_text`: round indices as runs, times to the nanosecond, lists of numbers on one line --
    the run read back is the one written, in fewer bytes than indent=1 alone (a real run: 5.3 -> 1.8 MB)."""
    d = json.loads((GOLDEN / "paired_run.json").read_text())  # a run with round indices
    text = results_text(copy.deepcopy(d))
    latency = _first_latency_bench(json.loads(text))["extra_info"]
    assert "latency_round" not in latency["samples"] and latency["samples_runs"]["latency_round"][0][1] > 1
    assert '"data": [0.' in text  # one line
    assert len(text) < 0.9 * len(json.dumps(d, indent=1))
    (tmp_path / "r.json").write_text(text)
    _same_run(parse_run(d), load_run(tmp_path / "r.json"))
    assert results_text(json.loads(text)) == text  # idempotent


@pytest.mark.parametrize("runs", [5, [[0, 3], [1]], [[0, 0]], [["a", 2]], [[0.5, 2]], [[0, 10**12]]])
def test_malformed_round_runs_are_a_clear_error(runs):
    d = compact_samples(json.loads((GOLDEN / "paired_run.json").read_text()))
    _first_latency_bench(d)["extra_info"]["samples_runs"] = {"latency_round": runs} if runs != 5 else 5
    with pytest.raises(ResultsError, match=r"benchmarks\[\d+\].*samples_runs"):
        parse_run(d, "r.json")


def test_a_sample_list_that_differs_from_stats_data_is_kept():
    d = doc()
    bench = _first_latency_bench(d)
    bench["stats"]["data"] = [*bench["stats"]["data"][:-1], 123.0]
    compact_samples(d)
    assert "samples_in_stats" not in bench["extra_info"] and "latency_s" in bench["extra_info"]["samples"]
