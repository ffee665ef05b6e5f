"""The build's time estimates: from an earlier build here, else the reference VM, else unknown;
the whole build's ETA scales with how the finished variants compared with their estimates."""

from __future__ import annotations

import json

from slimbench.build.eta import REFERENCE_S, BuildEta, estimate, previous_seconds


def _manifest(root, dirname, name, seconds, when):
    (root / dirname).mkdir(parents=True)
    (root / dirname / "manifest.json").write_text(json.dumps({"name": name, "build_seconds": seconds,
                                                              "built_at": when}))


def test_estimates_come_from_the_latest_earlier_build_then_the_reference(tmp_path):
    _manifest(tmp_path, "standard-aaa", "standard", 100.0, "2026-11-01T00:00:00+00:00")
    _manifest(tmp_path, "standard-bbb", "standard", 300.0, "2026-11-02T00:00:00+00:00")
    _manifest(tmp_path, "standard-numpy-ccc", "standard-numpy", 5.0, "2026-11-03T00:00:00+00:00")
    (tmp_path / "light-ddd").mkdir()
    (tmp_path / "light-ddd" / "manifest.json").write_text("{broken")
    assert previous_seconds(tmp_path, "standard") == 300.0  # not standard-numpy's, not the older one
    assert estimate(tmp_path, "standard", True) == (300.0, "an earlier build here")
    assert estimate(tmp_path, "light", True) == (REFERENCE_S["light"], "the reference 2-core VM")
    assert estimate(tmp_path, "light", False) == (None, "unknown")  # another dataset: no reference
    assert estimate(tmp_path, "mine", True) == (None, "unknown")


def test_the_eta_follows_the_machine():
    eta = BuildEta({"a": 100.0, "b": 300.0, "c": None}, started=0.0)
    line = eta.plan_line(2, ["the reference 2-core VM"])
    assert "3 to build, 2 cached" in line and "about 7 min plus the ones marked ?" in line and "c ?" in line
    progress = eta.finished("a", 200.0)  # twice as slow as estimated
    assert "about 10 min left for 1 more and 1 without an estimate" in progress and "2.0x the estimates" in progress
    unknown = BuildEta({"x": None, "y": None}, started=0.0)
    assert unknown.plan_line(0, []).startswith("build plan: 2 to build, 0 cached: x, y; no time estimate")
    assert unknown.finished("x", 3.0).endswith(", 1 more to build")


def test_plan_says_each_step_of_make_report(tmp_path, capsys):
    from slimbench.cli import main
    from slimbench.testing import write_specs

    write_specs(tmp_path / "models", [{"name": "standard", "runtime": "calibration", "calibration": {"sleep_s": 0.001}},
                                      {"name": "fast", "runtime": "calibration", "calibration": {"sleep_s": 0.001}}])
    code = main(["plan", "--models", str(tmp_path / "models"), "--cache", str(tmp_path / "cache"),
                 "--dataset", "synthetic"])
    out = capsys.readouterr().out
    assert code == 0
    assert "1. slimbench build" in out and "2 variants: 0 cached, 2 to build (2 without an estimate)" in out
    assert "9 rungs: 0 cached, 9 to build (9 without an estimate)" in out and "3. pytest bench" in out and "in all about" in out
