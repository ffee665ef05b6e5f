"""No silent truncation: each variant's accuracy row says how many tokens it reads and what share
of the test texts is longer than that (known truths from a tiny WordPiece tokenizer)."""

from __future__ import annotations

from slimbench.measure import truncation_figures
from slimbench.testing import make_tiny_checkpoint


def test_the_share_of_texts_longer_than_the_max_length_is_counted(tmp_path):
    tok = make_tiny_checkpoint(tmp_path / "m") / "tokenizer.json"
    from tokenizers import Tokenizer

    t = Tokenizer.from_file(str(tok))
    texts = ["good", "good " * 5, "good " * 20, "bad " * 40]
    lengths = [len(t.encode(x).ids) for x in texts]  # special tokens included, as the runtime counts
    assert lengths[0] < lengths[1] < lengths[2] < lengths[3]
    figs = truncation_figures(tok, lengths[1], texts)
    assert figs["max_length"] == {"value": float(lengths[1]), "unit": "count", "n": 1}
    assert figs["truncated_share"]["value"] == 0.5 and figs["truncated_share"]["n"] == 4
    assert figs["tokens_p99"]["value"] > lengths[2]
    assert truncation_figures(tok, lengths[3], texts)["truncated_share"]["value"] == 0.0


def test_the_report_names_the_variants_that_cut_texts(tmp_path):
    import json
    from pathlib import Path

    from slimbench.analysis.results import load_runs
    from slimbench.render.report import render_markdown

    doc = json.loads((Path(__file__).parent / "golden" / "report" / "machine_a.json").read_text())
    for b in doc["benchmarks"]:
        info = b["extra_info"]
        if info.get("metric") == "accuracy":
            share = {"standard": 0.123, "ultra-light": 0.335, "ultra-light-onnx-int8": 0.335}.get(info["variant"], 0.004)
            info["figures"].update(max_length={"value": 64.0, "unit": "count", "n": 1},
                                   truncated_share={"value": share, "unit": "ratio", "n": 1072})
    (tmp_path / "r.json").write_text(json.dumps(doc))
    text = render_markdown(load_runs([tmp_path / "r.json"]), plots=False)
    first_screen = text.split("## All results")[0]
    assert "`standard` reads 64 tokens and cuts 12.3 % of the test texts" in first_screen
    # variants that read and cut alike share one clause
    assert "`ultra-light` and `ultra-light-onnx-int8` read 64 tokens and cut 33.5 % of the test texts" in first_screen
    assert "`light` reads" not in first_screen  # 0.4 %: not worth a line
    # the full table shows each variant's max length in tokens (the figure's value, not its sample count)
    full = text.split("## All results")[1]
    lines = full.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| variant"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip().strip("|").split("|")])
    col = table[0].index("max length (tokens)")
    cells = {row[0]: row[col] for row in table[2:]}
    assert cells["standard"] == "64" and cells["light"] == "64", cells
