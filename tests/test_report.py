"""The report renderer: golden Markdown and summary.json from fixed results (no model), plus the
numbers behind them with literal values.

Regenerate the golden files after an intended change with
    SLIMBENCH_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_report.py
and read the diff. The input fixtures are written by tests/golden/report/make_fixtures.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from slimbench.analysis.results import Run, load_runs
from slimbench.cli import main as cli_main
from slimbench.render.command import write_report
from slimbench.render.grouping import compare_runs, group_runs
from slimbench.render.plots import plot_files
from slimbench.render.report import render_markdown
from slimbench.render.rows import COLUMN, build_rows, fmt_sig
from slimbench.render.tables import ReportError, cell_text, parse_columns, render_headline_table, short_error
from slimbench.render.verdict import Point, dominated, noisy_latencies, pareto_front, ship_advice

GOLDEN = Path(__file__).parent / "golden" / "report"
UPDATE = os.environ.get("SLIMBENCH_UPDATE_GOLDEN") == "1"


def runs(*names: str) -> list[Run]:
    return load_runs([GOLDEN / f"{name}.json" for name in names])


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"golden file {path} is missing; create it with SLIMBENCH_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (f"output differs from golden file {path}; if the change is intended, "
                              "regenerate with SLIMBENCH_UPDATE_GOLDEN=1 and review the diff")


def row(rows, variant):
    return next(r for r in rows if r.variant == variant)


# --- golden files ----------------------------------------------------------------------------------

def test_single_machine_golden():
    """A failed variant, a failed metric, a missing metric, an untrained variant, a noisy latency."""
    check_golden("single_machine.md", render_markdown(runs("machine_a")))


def test_paired_run_golden():
    """A run of the paired harness (`pytest bench` on calibration variants): paired ratios with their
    intervals, how the timings were taken, a variant whose worker and probes crashed."""
    text = render_markdown(runs("paired_run"))
    assert "### Paired ratios to `standard`" in text and "Timed out of the measuring process" in text
    # the ship advice quotes the table's speed-up (paired), not a ratio of the two unpaired medians
    speedup = row(build_rows(runs("paired_run")[0]), "fast").cells["speedup"].value
    assert f"{fmt_sig(speedup)}× speed-up" in text.split("### Which variant should I ship?")[1]
    check_golden("paired.md", text)


def test_comparison_golden():
    check_golden("comparison.md", render_markdown(runs("machine_a"), baseline=runs("machine_a_baseline")))


def test_two_machines_golden():
    check_golden("two_machines.md", render_markdown(runs("machine_a", "machine_b")))


def test_summary_json_golden(tmp_path):
    current, baseline = runs("machine_a", "machine_b"), runs("machine_a_baseline")
    path = write_report(current, tmp_path, baseline_runs=baseline, plots=False)
    check_golden("summary.json", (tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert path.read_text(encoding="utf-8") == render_markdown(current, baseline=baseline, plots=False)
    doc = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    p50 = [r for r in doc["records"] if r["variant"] == "onnx-int8" and r["figure"] == "p50_s"]
    assert [(r["machine"], r["unit"], r["n"]) for r in p50] == [("a1a1a1a1a1", "s", 20), ("b2b2b2b2b2", "s", 20)]
    assert p50[0]["iqr"] is not None  # a percentile's spread comes from its raw samples
    failed = [r for r in doc["records"] if r["variant"] == "broken"]
    assert len(failed) == 6 and all(r["status"] == "failed" and r["value"] is None for r in failed)


# --- formatting -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (91.612345, "91.6"), (9.4, "9.40"), (0.38, "0.380"), (0.0251, "0.0251"), (4507.04, "4507"),
    (9.996, "10.0"), (0.0, "0"), (1.0, "1.00"), (123.4, "123"), (float("inf"), "–"),
])
def test_fmt_sig(value, text):
    assert fmt_sig(value) == text


def test_short_error_is_one_line_and_cut():
    assert short_error("a  b\nc") == "a b c"
    cut = short_error("x" * 100, 20)
    assert len(cut) == 20 and cut.endswith("…")


def test_cells_scale_units_only_when_rendering():
    rows = build_rows(runs("machine_a")[0])
    std = row(rows, "standard")
    assert std.value("size") == 91_612_345  # bytes in the row
    assert cell_text(COLUMN["size"], std.cells["size"]) == "91.6"  # MB in the table
    assert cell_text(COLUMN["p50"], std.cells["p50"]) == "9.40"  # ms
    assert cell_text(COLUMN["accuracy"], std.cells["accuracy"]) == "85.6"  # %


# --- rows, ratios, best values ----------------------------------------------------------------------

def test_rows_failed_missing_untrained():
    rows = build_rows(runs("machine_a")[0])
    assert [r.variant for r in rows] == ["standard", "light", "ultra-light", "quantized", "onnx-int8",
                                         "ultra-light-onnx-int8", "broken"]
    assert row(rows, "broken").failed
    light = row(rows, "light")
    assert not light.failed and light.failures == {"load": "fresh-process probe timed out after 300 s (killed)"}
    assert light.cells["cold_load"].state == "failed" and light.cells["p50"].ok
    quantized = row(rows, "quantized")
    assert quantized.cells["peak_rss"].state == "missing" and quantized.cells["memory_ratio"].state == "missing"
    ultra = row(rows, "ultra-light")
    assert ultra.cells["accuracy"].state == "untrained" and ultra.cells["accuracy_ratio"].state == "untrained"


def test_ratios_use_standard_of_the_same_run():
    rows = build_rows(runs("machine_a")[0])
    onnx, std = row(rows, "onnx-int8"), row(rows, "standard")
    assert onnx.value("p50") == pytest.approx(0.0026) and std.value("p50") == pytest.approx(0.0094031)
    assert onnx.value("speedup") == pytest.approx(0.0094031 / 0.0026)  # standard p50 / variant p50
    assert onnx.value("size_ratio") == pytest.approx(23_501_220 / 91_612_345)
    assert onnx.value("accuracy_ratio") == pytest.approx(0.85 / 0.856)
    assert row(rows, "standard").value("speedup") == 1.0


def test_no_standard_leaves_ratio_columns_empty():
    run = runs("machine_a")[0]
    run.measurements = [m for m in run.measurements if m.variant != "standard"]
    rows = build_rows(run)
    assert all(r.cells[k].state == "missing" for r in rows for k in ("speedup", "size_ratio", "memory_ratio"))
    assert {r.cells["accuracy_ratio"].state for r in rows} == {"missing", "untrained"}
    text = render_markdown([run], plots=False)
    assert "This run has no `standard` variant, so the × columns are empty." in text
    assert "No comparable `standard` variant" in text


def test_best_value_marked_and_failure_row():
    table = render_headline_table(build_rows(runs("machine_a")[0]))
    lines = {line.split("|")[1].strip().split(" ")[0]: line for line in table.splitlines()[2:]}
    assert "**2.30**" in lines["ultra-light-onnx-int8"] and "**0.380**" in lines["ultra-light-onnx-int8"]
    assert "**85.6**" in lines["standard"] and "**" not in lines["quantized"]
    broken = lines["broken"]
    assert "| broken (failed: artifact /cache/artifacts/broken-1234 is corrup…) |" in broken
    assert "\\|" not in broken and "\n" not in broken  # the cut fell before the pipe; one line


# --- which variant to ship --------------------------------------------------------------------------

def test_pareto_front_and_dominated_literal_points():
    pts = [Point("a", 0.80, 0.001, 2e6), Point("b", 0.85, 0.003, 20e6), Point("c", 0.86, 0.009, 90e6),
           Point("d", 0.84, 0.006, 60e6), Point("e", 0.79, 0.0005, 50e6)]
    assert [p.variant for p in pareto_front(pts, "latency_s")] == ["e", "a", "b", "c"]
    assert [p.variant for p in pareto_front(pts, "size_bytes")] == ["a", "b", "c"]
    assert dominated(pts) == {"d": ["b"]}


def test_ship_advice_excludes_failed_and_untrained():
    advice = ship_advice(build_rows(runs("machine_a")[0]))
    assert advice.excluded == {"light": "failed: load", "ultra-light": "untrained", "broken": "failed"}
    assert [p.variant for p in advice.latency_front] == ["ultra-light-onnx-int8", "onnx-int8", "standard"]
    assert advice.dominated == {"quantized": ["onnx-int8"]}
    assert advice.threshold == pytest.approx(0.856 * 0.99)
    assert advice.fastest is not None and advice.fastest.variant == "onnx-int8"


def test_noise_warning_only_for_wide_latency():
    assert [(v, n) for v, _, n in noisy_latencies(runs("machine_a")[0])] == [("standard", 20)]
    # machine B keeps no raw latency samples: the spread comes from the iqr_s / p50_s figures
    assert [v for v, _, _ in noisy_latencies(runs("machine_b")[0])] == ["onnx-int8"]


# --- comparison -------------------------------------------------------------------------------------

def test_comparison_verdicts_are_the_gates():
    """One judge: every ✓/✗ of the report is the gate's regression/improvement on the same files."""
    from slimbench.analysis.gate import gate
    from slimbench.analysis.gate_rules import parse_config
    from slimbench.render.grouping import GATE_FIGURE

    current, baseline = runs("machine_a")[0], runs("machine_a_baseline")[0]
    changes = {vc.variant: vc for vc in compare_runs(current, baseline)}
    onnx = changes["onnx-int8"].changes
    assert onnx["p50"].verdict == "worse" and onnx["p50"].method == "regression" and onnx["p50"].p < 0.05
    assert onnx["p50"].delta == pytest.approx(0.3)
    assert onnx["throughput"].verdict == "worse"  # judged on batch times, reported as throughput
    assert onnx["size"].verdict == "same"
    std = changes["standard"].changes
    assert std["p50"].verdict == "noise" and std["first_pred"].verdict == "unknown"  # no rule for 1st pred.
    ul = changes["ultra-light-onnx-int8"].changes
    assert ul["size"].verdict == "better"
    assert ul["accuracy"].verdict == "noise" and ul["accuracy"].delta == pytest.approx(-0.002)  # within 0.5 pt
    assert changes["light"].changes["cold_load"].verdict == "failed"
    assert changes["quantized"].changes["peak_rss"].verdict == "missing"
    assert (changes["broken"].status, changes["onnx"].status) == ("new", "gone")
    marks = {(v, GATE_FIGURE[k]): c.verdict for v, vc in changes.items() if vc.status == "both"
             for k, c in vc.changes.items() if c.verdict in ("better", "worse")}
    findings = {(f.variant, f.figure): f.kind for f in gate(baseline, current).findings
                if f.kind in ("regression", "improvement") and f.figure in GATE_FIGURE.values()}
    assert marks == {k: {"regression": "worse", "improvement": "better"}[v] for k, v in findings.items()}
    # with this project's config, timings between unpaired runs are history: no ✗ on any timing
    history = compare_runs(current, baseline, parse_config({"timings": "history"}))
    assert {vc.variant: vc for vc in history}["onnx-int8"].changes["p50"].verdict == "noise"


def test_previous_run_of_the_same_machine_is_the_default_baseline():
    reports = group_runs(runs("machine_a", "machine_a_baseline"))  # the older file listed last on purpose
    assert len(reports) == 1 and reports[0].baseline_kind == "previous"
    assert Path(reports[0].run.source).name == "machine_a.json"
    implicit = render_markdown(runs("machine_a", "machine_a_baseline"), plots=False)
    explicit = render_markdown(runs("machine_a"), baseline=runs("machine_a_baseline"), plots=False)
    table = explicit[explicit.index("Δ = (this run"):explicit.index("### Which variant")]
    assert table in implicit
    assert "Against the previous run of this machine: `machine_a_baseline.json`" in implicit


def test_baseline_from_another_machine_is_flagged():
    text = render_markdown(runs("machine_b"), baseline=runs("machine_a_baseline"), plots=False)
    assert "⚠ The baseline was measured on another machine (AMD EPYC, 2 cores, 24 GiB)" in text


def test_rendering_is_deterministic():
    assert render_markdown(runs("machine_a", "machine_b")) == render_markdown(runs("machine_a", "machine_b"))


# --- files, plots, command line ---------------------------------------------------------------------

@pytest.mark.slow
def test_write_report_plots_and_step_summary(tmp_path):
    step = tmp_path / "step_summary.md"
    step.write_text("earlier step\n", encoding="utf-8")
    current, baseline = runs("machine_a"), runs("machine_a_baseline")
    path = write_report(current, tmp_path / "out", baseline_runs=baseline, step_summary=step)
    links = plot_files(group_runs(current, baseline))["a1a1a1a1a1"]
    assert list(links) == ["accuracy_vs_latency", "sizes", "load_phases", "latency_distributions"]
    for rel in links.values():
        png = tmp_path / "out" / rel
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
        assert f"]({rel})" in path.read_text(encoding="utf-8")
    summary = step.read_text(encoding="utf-8")
    assert summary.startswith("earlier step\n")  # appended, as GitHub expects
    assert summary.endswith(render_markdown(current, baseline=baseline, plots=False) + "\n")
    assert "![" not in summary  # relative image links would be broken in a step summary


def test_plots_one_folder_per_machine(tmp_path):
    reports = group_runs(runs("machine_a", "machine_b"))
    files = plot_files(reports)
    assert files["b2b2b2b2b2"] == {"accuracy_vs_latency": "plots/b2b2b2b2b2/accuracy_vs_latency.png",
                                   "sizes": "plots/b2b2b2b2b2/sizes.png",
                                   "load_phases": "plots/b2b2b2b2b2/load_phases.png"}  # no raw latency samples


def test_cli_report(tmp_path, monkeypatch, capsys):
    step = tmp_path / "gh_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    code = cli_main(["report", str(GOLDEN / "machine_b.json"), "--out", str(tmp_path / "rep"), "--no-plots",
                     "--summary-json", str(tmp_path / "s.json")])
    assert code == 0
    assert (tmp_path / "rep" / "REPORT.md").read_text(encoding="utf-8") == \
        render_markdown(runs("machine_b"), plots=False)
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))["slimbench_summary"] == 1
    assert step.read_text(encoding="utf-8").startswith("# slimbench report\n")
    assert "appended the report to" in capsys.readouterr().out


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert cli_main(["report", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_rendering_imports_no_model_and_no_matplotlib():
    code = ("import sys; from pathlib import Path; from slimbench.analysis.results import load_runs; "
            "from slimbench.render.report import render_markdown; "
            f"render_markdown(load_runs([Path({str(GOLDEN / 'machine_a.json')!r})]), "
            f"baseline=load_runs([Path({str(GOLDEN / 'machine_a_baseline.json')!r})])); "
            "bad = [m for m in ('torch', 'transformers', 'onnxruntime', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_written_files_get_ordinary_permissions(tmp_path):
    import os

    from slimbench.fsutil import atomic_write_text

    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "REPORT.md", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "REPORT.md").stat().st_mode & 0o777 == 0o644


def test_how_timings_were_taken_names_extra_rounds_and_repeated_blocks(tmp_path):
    """The report states the run's own schedule: sequential stopping and equal-time blocks, when used."""
    from slimbench.render.method import _timing_how

    doc = json.loads((GOLDEN / "paired_run.json").read_text())
    for bench in doc["benchmarks"]:
        timing = bench["extra_info"]["context"].get("timing")
        if timing:
            timing.update(rounds=40, max_rounds=120, ci_half_width=0.03, min_block_s=0.12, discard=2,
                          repeat={"fast": 3})
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    text = _timing_how(load_runs([path])[0])
    assert "40 interleaved rounds" in text and "up to 120 in all" in text and "±3%" in text
    assert "under 120 ms repeated the round's sentences" in text and "fast ×3" in text
    assert "the first 2 calls of each block discarded" in text
    assert "up to" not in _timing_how(runs("paired_run")[0])  # a run without them says nothing of them


@pytest.mark.parametrize("stopped, said", [
    ("ci", "every ratio reached that after 57 rounds"),
    ("max_s", "the budget ended them after 57 rounds, the intervals of `fast` still wider than ±2%"),
    ("max_rounds", "they ended at the 57-round limit, the intervals of `fast` still wider than ±2%"),
])
def test_how_timings_were_taken_says_what_ended_the_rounds(tmp_path, stopped, said):
    """The time budget, and which limit ended the extra rounds: a ratio whose interval is still
    wider than the target is named (`fast`'s 95 % CI here is about ±3.1 %)."""
    from slimbench.render.method import _timing_how

    def text(target: float) -> str:
        doc = json.loads((GOLDEN / "paired_run.json").read_text())
        for bench in doc["benchmarks"]:
            timing = bench["extra_info"]["context"].get("timing")
            if timing:
                timing.update(rounds=40, max_rounds=120, ci_half_width=target, max_s=120.0, rounds_run=57,
                              stopped=stopped)
        path = tmp_path / "run.json"
        path.write_text(json.dumps(doc))
        return _timing_how(load_runs([path])[0])

    assert "while the phase was within its 120-s budget" in text(0.02) and said in text(0.02)
    assert "`fast`" not in text(0.04)  # its interval is within ±4 %: nothing to name


@pytest.mark.parametrize("steal, said, warned", [
    ({}, False, False),  # runs from before it was recorded, or no /proc/stat
    ({"latency": 0.012, "throughput": 0.008}, True, False),
    ({"latency": 0.098, "throughput": 0.03}, True, True),
])
def test_how_timings_were_taken_states_the_hypervisor_s_steal(tmp_path, steal, said, warned):
    from slimbench.render.method import _timing_how

    doc = json.loads((GOLDEN / "paired_run.json").read_text())
    for bench in doc["benchmarks"]:
        timing = bench["extra_info"]["context"].get("timing")
        if timing and steal:
            timing["steal"] = steal
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    text = _timing_how(load_runs([path])[0])
    assert ("other guests during the latency rounds" in text) == said
    assert ("the host was contended" in text) == warned
    if said:
        assert f"{steal['latency']:.1%} of this machine's CPU time" in text and f"{steal['throughput']:.1%} during" in text


def test_the_method_names_how_many_worker_processes_a_variant_had():
    from slimbench.render.method import _timing_how

    run = runs("paired_run")[0]
    assert "one worker process per variant" in _timing_how(run)  # a file from before --worker-processes
    for m in run.measurements:
        if isinstance(m.context.get("timing"), dict):
            m.context["timing"]["processes"] = 2
    assert "2 worker processes per variant, the rounds alternating between them" in _timing_how(run)
    text = render_markdown([run])
    assert "Every variant ran in 2 worker processes of its own, the rounds alternating between them" in text


@pytest.mark.parametrize("rule, said", [
    (None, "only while one of its start-up times lay beyond ±10% of their median"),  # files from before
    ("median-reach", "only while the probes still allowed could move its median start-up time beyond ±10% "
                     "(at 3: while one of the three lay beyond ±10% of their median; at 4: while one of the "
                     "middle two"),
])
def test_the_load_section_states_the_probes_stopping_rule(rule, said):
    run = runs("paired_run")[0]
    for m in run.measurements:
        if m.metric == "load":
            m.context.setdefault("timing", {}).update(samples_range=[3, 5], spread=0.10, **({"rule": rule} if rule else {}))
    assert said in render_markdown([run])


def test_the_load_section_says_which_start_ups_were_the_timing_workers():
    run = runs("paired_run")[0]
    assert "were its timing workers" not in render_markdown([run])  # a file without the marks
    for m in run.measurements:
        if m.metric == "load" and m.ok:
            m.samples["worker_start"] = [1.0, 1.0] + [0.0] * (len(m.samples["load_s"]) - 2)
    assert "The first 2 of a variant's processes were its timing workers" in render_markdown([run])


def test_the_timing_note_says_how_each_throughput_block_began():
    from slimbench.render.method import _throughput_warmup_text

    assert _throughput_warmup_text({}) == ""  # older results: two batches, the first dropped ("likewise")
    assert "after an untimed call on 4 sentences" in _throughput_warmup_text({"throughput_warmup": 4})
    assert "on 1 sentence)" in _throughput_warmup_text({"throughput_warmup": 1})
    assert "no call before it" in _throughput_warmup_text({"throughput_warmup": 0})


# --- the report answers first ---------------------------------------------------------------------

def test_the_verdict_comes_first_from_the_ship_advice():
    """Within the first 15 lines: the variant to ship (the fastest keeping 99 % of standard's accuracy,
    as `ship_advice` chooses it), how much faster and smaller, the accuracy change with its interval."""
    text = render_markdown(runs("machine_a"), plots=False)
    head = "\n".join(text.splitlines()[:15])
    advice = ship_advice(build_rows(runs("machine_a")[0]))
    assert advice.fastest is not None
    assert f"**Ship `{advice.fastest.variant}`**: 3.62× faster (p50 2.60 vs 9.40 ms), 3.90× smaller" in head
    assert "−0.6 accuracy points [95 % CI −1.7, +0.5]" in head and "≥ 99 % of `standard`'s accuracy" in head
    assert "**Fastest and smallest overall**: `ultra-light-onnx-int8`" in head and "below the accuracy budget" in head
    assert "**Not worth it here**" in head and "`quantized`" in head


def test_keep_standard_when_nothing_faster_keeps_its_accuracy():
    run = runs("machine_a")[0]
    for m in run.measurements:
        if m.metric == "accuracy" and m.variant != "standard" and m.ok:
            m.figures["accuracy"] = replace(m.figures["accuracy"], value=0.5)
    text = render_markdown([run], plots=False)
    assert "**Keep `standard`**: no variant is faster while keeping its accuracy budget" in text.splitlines()[2]


def test_the_first_table_has_at_most_ten_columns_and_columns_chooses_them():
    text = render_markdown(runs("machine_a"), plots=False)
    header = next(line for line in text.splitlines() if line.startswith("| variant"))
    assert header.count("|") - 1 == 10
    assert "n |" not in header and "macro-F1" not in header  # in the full table further down
    assert "## All results:" in text and "macro-F1 (%)" in text.split("## All results:")[1]
    chosen = render_markdown(runs("machine_a"), plots=False, columns=parse_columns("p50,accuracy,speedup"))
    header = next(line for line in chosen.splitlines() if line.startswith("| variant"))
    assert [h.strip() for h in header.strip("|").split("|")] == ["variant", "p50 (ms)", "accuracy (%)", "speed-up ×"]


def test_an_unknown_column_names_the_known_ones():
    with pytest.raises(ReportError, match="unknown column 'latency'; choose from size, gzip, params"):
        parse_columns("p50,latency")


def test_one_noise_line_instead_of_a_warning_per_row():
    text = render_markdown(runs("machine_a"), plots=False)
    assert "⚠ `" not in text and text.count("**Noise**") == 1
    paired = render_markdown(runs("paired_run"), plots=False)
    assert "**Noise**: speed-ups are paired over 8 interleaved rounds; their 95 % intervals are" in paired


def test_summary_json_and_the_step_summary_carry_the_same_verdict(tmp_path):
    step = tmp_path / "step.md"
    write_report(runs("machine_a"), tmp_path, plots=False, step_summary=step)
    doc = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    verdict = doc["verdict"][0]
    assert verdict["ship"]["variant"] == "onnx-int8" and verdict["ship"]["within_budget"]
    first = verdict["text"].splitlines()[0]
    assert first.startswith("**Ship `onnx-int8`**")
    assert first in (tmp_path / "REPORT.md").read_text(encoding="utf-8").splitlines()[:3]
    assert first in step.read_text(encoding="utf-8").splitlines()[:3]


# --- a bring-your-own report says nothing of the default zoo or the development machine ---------------

# Facts about slimbench's default zoo, its dataset and the machine it was developed on: true there, false
# for anyone else's run, so a renderer must never print them unless the run itself measured them.
FOREIGN_FACTS = [r"default zoo", r"slimbench's own", r"\bVM\b", r"\bvirtual machine", r"2-core", r"1,109",
                 r"18–28", r"0\.7 points", r"~50 ms", r"1–3 %", r"~2 MB", r"~20 %", r"25 % off", r"±5 %",
                 r"seeds 0–2", r"sparse-50", r"pruned-heads", r"`light`", r"light's", r"ultra-light", r"MiniLM",
                 r"movie", r"Rotten", r"EPYC", r"\bAMD\b", r"family 2[56]", r"Xeon", r"onnx-int8"]


def _bring_your_own_run(tmp_path: Path) -> Path:
    """paired_run.json as a user's run: another CPU, their dataset, every conditional sentence switched on."""
    doc = json.loads((GOLDEN / "paired_run.json").read_text())
    doc["machine_info"]["cpu"]["brand_raw"] = "Example CPU 9000"
    doc["machine_info"]["node"] = "laptop"
    sm = doc["machine_info"].get("slimbench_machine")
    if isinstance(sm, dict):
        sm.update(cpu="Example CPU 9000", label="Example CPU 9000, 8 cores, 32 GiB", cpu_generation="",
                  cpu_flags=["avx2"])
    for bench in doc["benchmarks"]:
        ctx = bench["extra_info"]["context"]
        ctx["dataset"] = "reviews.csv"
        timing = ctx.get("timing")
        if timing and bench["extra_info"]["metric"] == "latency":
            timing.update(processes=2, frozen_idle=True, rounds=40, max_rounds=120, ci_half_width=0.01,
                          max_s=150.0, rounds_run=57, stopped="max_s", min_block_s=0.12, discard=2,
                          repeat={"fast": 3}, throughput_warmup=4, labels_cached=["fast", "standard"],
                          steal={"latency": 0.08, "throughput": 0.01})
        if bench["extra_info"]["metric"] == "accuracy":
            ctx.setdefault("timing", {})["batch"] = 1 if bench["extra_info"]["variant"] == "fast" else 64
        if bench["extra_info"]["metric"] == "load":
            ctx.setdefault("timing", {}).update(samples_range=[3, 5], spread=0.10, rule="median-reach")
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_bring_your_own_report_states_only_what_its_run_measured(tmp_path):
    import re

    path = _bring_your_own_run(tmp_path)
    sweep = {"source": "standard", "scope": "global", "recover_epochs": 0, "test_split": 300,
             "levels": [{"variant": "standard", "target_sparsity": 0.0, "encoder_sparsity": 0.0,
                         "model_sparsity": 0.0, "test_accuracy": 0.9, "val_accuracy": 0.9, "file_bytes": 4000,
                         "compressed_bytes": 1000}]}
    write_report(load_runs([path]), tmp_path / "out", plots=False, sweep=sweep)
    text = (tmp_path / "out" / "REPORT.md").read_text(encoding="utf-8")
    summary = (tmp_path / "out" / "summary.json").read_text(encoding="utf-8")
    assert "predicted each sentence alone" in text and "other guests during the latency rounds" in text
    assert "were read from the cache" in text and "worker processes per variant" in text  # all switched on
    found = {fact for fact in FOREIGN_FACTS for doc in (text, summary) if re.search(fact, doc)}
    assert not found, f"the report of someone else's run states facts of slimbench's own zoo or machine: {found}"


def test_cli_columns(tmp_path, capsys):
    out = tmp_path / "rep"
    assert cli_main(["report", str(GOLDEN / "machine_b.json"), "--out", str(out), "--no-plots",
                     "--columns", "p50,accuracy"]) == 0
    header = next(line for line in (out / "REPORT.md").read_text(encoding="utf-8").splitlines()
                  if line.startswith("| variant"))
    assert [h.strip() for h in header.strip("|").split("|")] == ["variant", "p50 (ms)", "accuracy (%)"]
    assert cli_main(["report", str(GOLDEN / "machine_b.json"), "--out", str(out), "--columns", "p50,fast"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown column 'fast'; choose from size," in err


# --- plots a reader can read ----------------------------------------------------------------------

def test_log_axes_get_plain_1_2_5_ticks():
    from slimbench.render.plots import nice_ticks

    assert nice_ticks(0.3, 25) == [0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
    assert nice_ticks(0.05, 900) == [0.1, 1.0, 10.0, 100.0]  # a wide range: decades only


def test_point_labels_do_not_overlap():
    """The committed report's crowded corner (standard, standard-numpy, pruned-heads, quantized at
    about the same accuracy and latency): every label is placed clear of the others, inside the axes."""
    from slimbench.render.plots import _figure, _log_x, place_labels

    points = [("standard", 15.4, 86.83), ("standard-numpy", 11.4, 86.83), ("pruned-heads", 13.4, 86.65),
              ("quantized", 9.04, 86.56), ("onnx", 6.33, 86.83), ("onnx-static-int8", 3.97, 86.38),
              ("onnx-int8", 3.90, 86.11), ("sparse-50", 15.5, 85.12), ("light", 8.90, 84.58),
              ("ultra-light", 2.09, 80.70), ("ultra-light-numpy", 0.913, 80.70),
              ("ultra-light-onnx-int8", 0.535, 80.52)]
    fig = _figure(len(points))
    ax = fig.add_subplot()
    for _, x, y in points:
        ax.scatter([x], [y])
    _log_x(ax, 0.33, 25)
    ax.set_ylim(80, 88)
    fig.canvas.draw()
    fig.set_layout_engine("none")
    texts = place_labels(ax, points)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    clashes = [(texts[i].get_text(), texts[j].get_text()) for i in range(len(boxes)) for j in range(i)
               if boxes[i].overlaps(boxes[j])]
    assert not clashes, clashes
