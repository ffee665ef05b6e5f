"""What an installed scipy adds to a torch variant's measured start-up (issue 15): fresh-process
probes of one artifact (`slimbench.runtimes.probes.run_probe`, as the bench takes them), alternating between
the environment as it is (scipy installed: transformers imports scipy.optimize while loading a BERT)
and the same environment with scipy hidden from the child (a sitecustomize that sets
sys.modules["scipy"] = None, so that `importlib.util.find_spec("scipy")` finds nothing and
transformers skips it, as in an application's environment without scipy).

    PYTHONPATH=src python experiments/training/no_scipy.py ARTIFACT_DIR [PAIRS]

(an environment that still has scipy installed; nothing else running; ~10 s a probe)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from slimbench.runtimes.probes import run_probe


def main(artifact: Path, pairs: int) -> int:
    hide = Path(tempfile.mkdtemp())
    (hide / "sitecustomize.py").write_text('import sys\nsys.modules["scipy"] = None\n')
    arms = {"scipy installed": os.environ.get("PYTHONPATH", ""),
            "scipy hidden": os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH", "")]))}
    got: dict[str, list[tuple[float, float, float]]] = {a: [] for a in arms}
    texts = ["a quiet, moving film", "dull and far too long"]
    for i in range(pairs):
        for arm in (list(arms) if i % 2 == 0 else list(arms)[::-1]):
            r = run_probe(artifact, 2, texts, env=dict(os.environ, PYTHONPATH=arms[arm]))
            if not r.ok:
                print(arm, "failed:", r.error)
                return 1
            got[arm].append((r.phases_s["import"], r.phases_s["load"], r.start_to_first_prediction_s))
    print(f"{artifact.name}, {pairs} fresh-process probes per arm, alternated; medians in seconds")
    print("| arm | import | load | start to first prediction |")
    print("|---|---|---|---|")
    for arm, rows in got.items():
        imp, load, total = (statistics.median(col) for col in zip(*rows, strict=True))
        print(f"| {arm} | {imp:.2f} | {load:.2f} | {total:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 8))
