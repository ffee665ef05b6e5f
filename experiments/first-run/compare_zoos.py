"""Two built zoos side by side, from their manifests: per variant, validation and test accuracy and
build seconds (the newest build of each variant name in each cache). Issue 15's bf16 check.

    python experiments/first-run/compare_zoos.py CACHE_A CACHE_B [--names A,B]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def newest(cache: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in (cache / "artifacts").glob("*/manifest.json"):
        m = json.loads(path.read_text())
        if m["name"] not in out or m.get("built_at", "") > out[m["name"]].get("built_at", ""):
            out[m["name"]] = m
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--names", default="A,B")
    args = ap.parse_args()
    na, nb = args.names.split(",")
    a, b = newest(args.a), newest(args.b)
    print(f"| variant | val {na} | val {nb} | test {na} | test {nb} | test change (points) | build s {na} | build s {nb} |")
    print("|---|---|---|---|---|---|---|---|")
    names = sorted((n for n in a if n in b and "test_accuracy" in a[n] and "test_accuracy" in b[n]),
                   key=lambda n: (a[n].get("built_at", ""), n) if "-sparse-" not in n else ("~", n))
    for name in names:
        x, y = a[name], b[name]
        print(f"| {name} | {x['val_accuracy']:.4f} | {y['val_accuracy']:.4f} | {x['test_accuracy']:.4f} | "
              f"{y['test_accuracy']:.4f} | {100 * (y['test_accuracy'] - x['test_accuracy']):+.2f} | "
              f"{x['build_seconds']:.0f} | {y['build_seconds']:.0f} |")


if __name__ == "__main__":
    main()
