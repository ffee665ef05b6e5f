"""Two real processes building the same variants into one cache build each variant once: the second
waits on the first's lock (asleep, not spinning) and then finds the artifact built."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from slimbench.testing import make_tiny_checkpoint, tiny_zoo_specs, write_specs

pytestmark = pytest.mark.slow

BUILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from slimbench.build.builder import BuildContext, build
    from slimbench.testing import synthetic_splits
    from slimbench.spec.zoo import Zoo

    splits = synthetic_splits()
    ctx = BuildContext(zoo=Zoo.load(Path(sys.argv[1])), root=Path(sys.argv[2]), splits_loader=lambda: splits,
                       threads=1, log=lambda s: print(s, flush=True))
    build(ctx, ["standard", "light"])
""")


def test_two_concurrent_builds_build_each_variant_once(tmp_path):
    models = write_specs(tmp_path / "models", tiny_zoo_specs(make_tiny_checkpoint(tmp_path / "base")))
    root = tmp_path / "artifacts"
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(models), str(root)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    logs = "\n".join(out for out, _ in outs)
    for name in ("standard", "light"):
        built = [line for line in logs.splitlines() if f"] {name}: built in" in line]
        found = [line for line in logs.splitlines()
                 if f"] {name}: built by another process" in line or f"] {name}: cached at" in line]
        assert len(built) == 1 and len(found) == 1, logs
    assert "is building it; waiting" in logs  # the second said why it paused
    assert len(list(root.glob("standard-*/manifest.json"))) == 1
    assert not list(root.glob(".*.partial-*"))
