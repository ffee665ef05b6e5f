"""The fresh-process probe: how a user's application starts, and what it costs in memory.

The parent spawns `python -m slimbench.runtimes.probes` and *blocks* until it exits (no busy-wait, no
sampler beside it: on a 2-core machine those would distort the very numbers we read). The child
times each phase itself -- runtime import, artifact load, first prediction, then a few warm
predictions -- and reads the kernel's peak-RSS high-water mark (VmHWM) after each phase. It
prints one JSON line. A child that crashes, is killed or hangs becomes a failed ProbeResult with the
reason; nothing in the parent is lost.

Keep the top-level imports of this module tiny: the child imports it before timing anything.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "SLIMBENCH_PROBE "
DEFAULT_TIMEOUT_S = 300.0
WARMUP_PREDICTIONS = 10  # untimed predictions before the warm-latency samples
PROBE_PREDICTIONS = 50  # warm predictions in each fresh-process probe (memory after inference)


def read_vm_kib(field_name: str, pid: str = "self") -> int:
    """A field of /proc/<pid>/status in KiB (VmHWM = peak RSS, VmRSS = current RSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field_name} not found in /proc/{pid}/status")


def peak_rss_bytes() -> int:
    return read_vm_kib("VmHWM") * 1024


def rss_split_bytes() -> dict[str, int]:
    """The current RSS split by kind: anonymous (the process's own allocations), file-backed (mapped
    shared libraries and files: how much of them counts depends on the kernel's page cache, not on
    the process) and shared memory."""
    return {kind: read_vm_kib(name) * 1024 for kind, name in (("anon", "RssAnon"), ("file", "RssFile"),
                                                              ("shmem", "RssShmem"))}


@dataclass
class ProbeResult:
    """One fresh-process sample. Times in seconds, memory in bytes; `error` set when it failed."""

    ok: bool
    error: str | None = None
    wall_s: float = 0.0  # spawn -> child exit, measured by the parent
    phases_s: dict[str, float] = field(default_factory=dict)  # interpreter, import, load, first_predict
    vmhwm_bytes: dict[str, int] = field(default_factory=dict)  # after_import, after_load, after_inference
    rss_bytes: dict[str, int] = field(default_factory=dict)  # anon, file, shmem: current RSS after inference
    # import, load: the process's user_s, sys_s and page faults during the phase (getrusage differences)
    phases_rusage: dict[str, dict[str, float]] = field(default_factory=dict)
    # "probe": a fresh process that exits after; "worker": a timing worker's own start-up, which takes
    # new memory while the other workers hold theirs (on a VM that hands freed memory back to its
    # host, its page faults can cost more: experiments/paired-timing/startup-rusage.md)
    source: str = "probe"
    warm_latency_s: list[float] = field(default_factory=list)
    stderr_tail: str = ""

    @property
    def phases_cpu_s(self) -> dict[str, float]:
        """CPU seconds of the process (all threads) per phase: wall >> CPU is a wait (disk, a busy core)."""
        return {p: r["user_s"] + r["sys_s"] for p, r in self.phases_rusage.items()}

    @property
    def load_rusage(self) -> dict[str, float]:
        return self.phases_rusage.get("load", {})

    @property
    def start_to_first_prediction_s(self) -> float:
        return sum(self.phases_s.get(k, 0.0) for k in ("interpreter", "import", "load", "first_predict"))


def median_reach(samples: list[float], more: int) -> tuple[float, float]:
    """The lowest and the highest median `samples` can have once `more` further samples, of any
    value, have joined them (a median only rises as a sample rises, so the extremes come from
    samples at -inf and +inf; infinite where they could take it anywhere)."""
    inf = float("inf")
    return statistics.median([*samples, *[-inf] * more]), statistics.median([*samples, *[inf] * more])


def wants_another_probe(start_s: list[float], least: int, most: int, spread: float) -> bool:
    """Early stopping of one variant's start-up probes: at least `least`, at most `most`, and between
    the two only while the probes still allowed could move the median (the figure reported) beyond
    +-`spread` of where it is: the median of all `most` is bound to lie within `median_reach`, so once
    that range is within the spread, more probes cannot change the figure by more than that (pyperf-
    style: a settled figure is not sampled further, a noisy one is). At 3 of 5 this asks all three
    samples to lie within the spread of their median; at 4 of 5 only the middle two, since an outlier
    at either end cannot move the median of five."""
    if len(start_s) < least:
        return True
    if len(start_s) >= most:
        return False
    middle = statistics.median(start_s)
    low, high = median_reach(start_s, most - len(start_s))
    return low < (1 - spread) * middle or high > (1 + spread) * middle


def _describe_exit(code: int) -> str:
    if code < 0:
        sig = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        if sig == "SIGKILL":
            return "was killed by SIGKILL (out of memory? check `dmesg`)"
        return f"crashed with {sig}"
    return f"exited with status {code}"


def measuring_env(threads: int, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every measuring child (probe or timing worker): fixed thread counts for
    every BLAS/OpenMP runtime, no tokenizer threads, no hub, no warnings on stderr."""
    child_env = dict(os.environ if env is None else env)
    child_env.update({"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
                      "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
                      "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"})
    return child_env


def child_module(name: str, pythonpath: str | None) -> str:
    """The module to run as the child process NAME (`worker`, `probes`) for the slimbench found first on
    PYTHONPATH: `slimbench.runtimes.NAME`, or `slimbench.NAME` in a checkout from before the runtimes
    package (the other side of a compare may be an older commit)."""
    for entry in (pythonpath or "").split(os.pathsep):
        package = Path(entry) / "slimbench" if entry else None
        if package is not None and (package / "__init__.py").is_file():
            return f"slimbench.{name}" if (package / f"{name}.py").is_file() else f"slimbench.runtimes.{name}"
    return f"slimbench.runtimes.{name}"


def run_probe(artifact_dir: Path, threads: int, texts: list[str], n_predict: int = 0,
              timeout_s: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None) -> ProbeResult:
    """Run one fresh-process probe of the artifact; never raises for a failing child."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"artifact": str(artifact_dir), "threads": threads, "texts": texts,
                   "n_predict": n_predict}, f)
        request = f.name
    child_env = measuring_env(threads, env)
    module = child_module("probes", child_env.get("PYTHONPATH"))  # looked up before the clock starts
    spawned = time.time()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", module, request, repr(spawned)],
                              capture_output=True, text=True, timeout=timeout_s, env=child_env)
    except subprocess.TimeoutExpired as err:
        tail = (err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or ""))[-500:]
        return ProbeResult(ok=False, error=f"probe of {artifact_dir.name} timed out after {timeout_s:.0f} s "
                                           "(hang?); raise --probe-timeout if it is just slow",
                           wall_s=time.perf_counter() - t0, stderr_tail=tail)
    finally:
        os.unlink(request)
    wall = time.perf_counter() - t0
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(MARKER)), None)
    tail = proc.stderr.strip()[-800:]
    if proc.returncode != 0 or line is None:
        last = tail.splitlines()[-1] if tail else "no output"
        return ProbeResult(ok=False, wall_s=wall, stderr_tail=tail,
                           error=f"probe of {artifact_dir.name} {_describe_exit(proc.returncode)}: {last}")
    data = json.loads(line[len(MARKER):])
    if data.get("error"):
        return ProbeResult(ok=False, wall_s=wall, error=f"probe of {artifact_dir.name}: {data['error']}")
    return result_of(data, wall)


def _import_runtime(fmt: str) -> None:
    """Import what an application of this runtime imports, so the import phase is honest."""
    import numpy  # noqa: F401
    import tokenizers  # noqa: F401

    import slimbench.runtimes.runners  # noqa: F401

    if fmt in ("hf", "hf-pruned", "torch-int8"):
        import torch  # noqa: F401
        import transformers  # noqa: F401
        from transformers import AutoModelForSequenceClassification  # noqa: F401
    elif fmt == "onnx":
        import onnxruntime  # noqa: F401
    elif fmt == "numpy-bert":
        import safetensors.numpy  # noqa: F401

        import slimbench.runtimes.numpy_bert  # noqa: F401


def start_runner(artifact: Path, threads: int, texts: list[str], n_predict: int, spawned: float, entered: float,
                 extra_work: float = 0.0) -> tuple[Any, dict[str, Any]]:
    """What a fresh process pays before it answers: import, load, first prediction, `n_predict` warm
    predictions (after untimed warm-up), each phase timed and followed by a VmHWM reading.

    Returns the open runner (None on a failure) and the probe record: phases_s, vmhwm_bytes,
    warm_latency_s, or error. The probe child and a timing worker started on its own both call this,
    so their start-up figures mean the same thing.
    """
    out: dict[str, Any] = {"phases_s": {"interpreter": max(0.0, entered - spawned)}, "vmhwm_bytes": {},
                           "warm_latency_s": [], "phases_rusage": {}}
    used = out["phases_rusage"]
    try:
        fmt = json.loads((artifact / "manifest.json").read_text()).get("format", "")
    except (OSError, ValueError) as err:
        return None, {"error": f"cannot read {artifact / 'manifest.json'}: {err}"}
    t, ru = time.perf_counter(), _rusage()
    _import_runtime(fmt)
    out["phases_s"]["import"], used["import"] = time.perf_counter() - t, _since(ru)
    out["vmhwm_bytes"]["after_import"] = peak_rss_bytes()

    from slimbench.errors import SlimbenchError
    from slimbench.runtimes.runners import open_runner

    try:
        t, ru = time.perf_counter(), _rusage()
        runner = open_runner(artifact, threads=threads)
        if extra_work:
            from slimbench.runtimes.runners import ExtraWorkRunner

            runner = ExtraWorkRunner(runner, extra_work)  # type: ignore[assignment]
        out["phases_s"]["load"], used["load"] = time.perf_counter() - t, _since(ru)
        out["vmhwm_bytes"]["after_load"] = peak_rss_bytes()
        t = time.perf_counter()
        runner.predict(texts[:1])
        out["phases_s"]["first_predict"] = time.perf_counter() - t
        for k in range(min(n_predict, WARMUP_PREDICTIONS)):  # as the in-process timing loop does
            runner.predict([texts[k % len(texts)]])
        import gc

        gc.disable()  # as pytest-benchmark's disable_gc does around the in-process samples
        try:
            for k in range(n_predict):
                t = time.perf_counter()
                runner.predict([texts[k % len(texts)]])
                out["warm_latency_s"].append(time.perf_counter() - t)
        finally:
            gc.enable()
        out["vmhwm_bytes"]["after_inference"] = peak_rss_bytes()
        out["rss_bytes"] = rss_split_bytes()
    except SlimbenchError as err:
        return None, {"error": str(err)}
    return runner, out


def _rusage() -> dict[str, float]:
    """The process's user and system CPU seconds and page faults so far (all zero where unknown)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return {"user_s": 0.0, "sys_s": 0.0, "minor_faults": 0.0, "major_faults": 0.0}
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"user_s": r.ru_utime, "sys_s": r.ru_stime, "minor_faults": float(r.ru_minflt),
            "major_faults": float(r.ru_majflt)}


def _since(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before[k] for k, v in _rusage().items()}


def result_of(record: dict[str, Any], wall_s: float = 0.0, source: str = "probe") -> ProbeResult:
    """A probe record (`start_runner`'s) as a ProbeResult."""
    if record.get("error"):
        return ProbeResult(ok=False, wall_s=wall_s, error=str(record["error"]), source=source)
    return ProbeResult(ok=True, wall_s=wall_s, phases_s=record["phases_s"], vmhwm_bytes=record["vmhwm_bytes"],
                       rss_bytes=record.get("rss_bytes") or {}, phases_rusage=record.get("phases_rusage") or {},
                       source=source,
                       warm_latency_s=record["warm_latency_s"])


def child_main(request_path: str, spawned: float) -> dict[str, Any]:
    entered = time.time()
    req = json.loads(Path(request_path).read_text())
    runner, out = start_runner(Path(req["artifact"]), int(req["threads"]), req["texts"], int(req["n_predict"]),
                               spawned, entered, float(os.environ.get("SLIMBENCH_EXTRA_WORK") or 0.0))
    if runner is not None:
        runner.close()
    return out


if __name__ == "__main__":
    result = child_main(sys.argv[1], float(sys.argv[2]))
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit without the interpreter's teardown (module finalisers, atexit hooks): after torch and
    # transformers it takes 1.3-1.8 s that no figure includes but every probe waited for
    # (experiments/first-run/probe-cost.md). Everything the parent reads is flushed above.
    os._exit(0)
