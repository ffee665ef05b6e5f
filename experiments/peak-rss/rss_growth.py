"""Peak RSS (VmHWM) of one fresh process as it makes batch-1 predictions, for artifact directories
given on the command line: after load, then after predictions 1, 5, 20 and 50 (the probes' 50).

    python experiments/peak-rss/rss_growth.py ~/.cache/slimbench/artifacts/light-<hash> ...

Each artifact runs in its own child process. Written to look into light's peak RSS moving with its
weight values alone (463 -> 488 MB in the report; same shapes, config and file size).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MARKS = (1, 5, 20, 50)


def vmhwm_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return round(int(line.split()[1]) / 1000)
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(artifact: Path) -> None:
    from slimbench.data import load_dataset
    from slimbench.runtimes.runners import open_runner

    texts = [e.text for e in load_dataset().test[: max(MARKS)]]
    runner = open_runner(artifact, threads=2)
    row = [f"load {vmhwm_mb()}"]
    for i, text in enumerate(texts, 1):
        runner.predict([text])
        if i in MARKS:
            row.append(f"{i}: {vmhwm_mb()}")
    print(f"{artifact.name}: VmHWM MB " + ", ".join(row))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
        return
    for artifact in sys.argv[1:]:
        subprocess.run([sys.executable, __file__, "--child", artifact], check=True)


if __name__ == "__main__":
    main()
