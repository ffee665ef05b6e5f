"""Parent side of the timing workers: start N processes per variant, ask them for timed blocks.

The parent never busy-waits: it blocks in `select` on the worker's pipe, with a timeout that turns
a hung worker into a failure (the worker is killed). A worker that crashes, hangs or answers with
an error raises `WorkerError` naming the variant; the caller drops it and goes on with the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from slimbench.errors import SlimbenchError
from slimbench.runtimes.probes import ProbeResult, child_module, measuring_env, result_of
from slimbench.runtimes.worker import PARENT_ENV, PROTOCOL

DEFAULT_TIMEOUT_S = 300.0
# Idle workers are stopped (SIGSTOP) between their requests where the OS can (POSIX): see Worker.freeze.
CAN_FREEZE = hasattr(signal, "SIGSTOP") and hasattr(signal, "SIGCONT")


def idle_pause_s(freeze_idle: bool) -> float:
    """The pause before each block that keeps the previous worker's spinning threads off the one
    being timed: none where idle workers are stopped, else `interleave.SETTLE_S`."""
    from slimbench.measure.interleave import SETTLE_S

    return 0.0 if freeze_idle and CAN_FREEZE else SETTLE_S


class WorkerError(SlimbenchError):
    """A timing worker crashed, hung or could not load its variant."""


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker runs: `key` names it (a variant, or `side:variant` in a paired A/B run)."""

    key: str
    artifact: Path
    threads: int
    extra_work: float = 0.0
    pythonpath: str | None = None  # a code checkout's src/ to import slimbench from (A/B runs)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return "was killed by SIGKILL (out of memory? check `dmesg`)" if name == "SIGKILL" else f"crashed with {name}"
    return f"exited with status {code}"


class Worker:
    """One running worker process and its pipes."""

    def __init__(self, spec: WorkerSpec, texts: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S,
                 startup_predictions: int | None = None):
        """`startup_predictions`: time the start-up as a probe does, with that many warm predictions
        (only meaningful when nothing else starts beside it)."""
        self.spec, self.timeout_s = spec, timeout_s
        self.info: dict[str, Any] = {}
        self._quitting = False
        self.frozen = False
        self.ready_s: float | None = None  # spawn -> handshake received, by the parent's clock
        self._spawned_at = time.perf_counter()
        spawned = time.time()
        env = measuring_env(spec.threads)
        if spec.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (spec.pythonpath, env.get("PYTHONPATH")) if p)
        env[PARENT_ENV] = str(os.getpid())
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 -- lives as long as the worker
        self.proc = subprocess.Popen([sys.executable, "-m", child_module("worker", env.get("PYTHONPATH"))], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        hello: dict[str, Any] = {"protocol": PROTOCOL, "artifact": str(spec.artifact), "threads": spec.threads,
                                 "texts": list(texts), "extra_work": spec.extra_work}
        if startup_predictions is not None:
            hello.update(spawned=spawned, n_predict=startup_predictions)
        self._send(hello)

    @property
    def key(self) -> str:
        return self.spec.key

    def _send(self, msg: Mapping[str, Any]) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._failure() from None

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().strip().splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "no output"

    def _failure(self, hung: bool = False) -> WorkerError:
        if hung:
            self.kill()
            return WorkerError(f"{self.key}: worker gave no answer within {self.timeout_s:.0f} s (hang?); "
                               "raise --probe-timeout if it is just slow")
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
            self.kill()
        return WorkerError(f"{self.key}: worker {_exit_text(code)}: {self._stderr_tail()}")

    def _receive(self) -> dict[str, Any]:
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], self.timeout_s)
        if not ready:
            raise self._failure(hung=True)
        line = out.readline()
        if not line:
            raise self._failure()
        reply = json.loads(line)
        if not reply.get("ok"):
            raise WorkerError(f"{self.key}: {reply.get('error', 'worker error')}")
        return reply

    def ready(self) -> dict[str, Any]:
        """Wait for the handshake (runtime imported, artifact loaded, first prediction made)."""
        if not self.info:
            self.info = self._receive()
            self.ready_s = time.perf_counter() - self._spawned_at
        return self.info

    def request(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        self.ready()
        self.thaw()
        self._send(msg)
        return self._receive()

    def freeze(self) -> None:
        """Stop the idle worker (SIGSTOP) until its next request, and wait until it has stopped.

        After a call, a runtime's threads keep spinning for a while in case more work comes
        (onnxruntime ~50 ms, OpenMP ~10-20 ms: experiments/paired-timing/spin.md); on a 2-core
        machine that takes a core from the worker timed next. A stopped process takes none, so
        the next block can start at once instead of after a pause. The threads resume where they
        were at the next request, whose first calls a block discards anyway."""
        if not CAN_FREEZE or self.frozen or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.frozen = True
        _wait_stopped(self.proc.pid)

    def thaw(self) -> None:
        """Let a frozen worker run again (SIGCONT)."""
        if self.frozen:
            self.frozen = False
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)

    def quit(self) -> None:
        """Ask the worker to exit (without waiting for it)."""
        if self.proc.poll() is None and not self._quitting:
            self.thaw()
            self._quitting = True
            with contextlib.suppress(WorkerError):  # already gone: close() reports how
                self._send({"op": "quit"})

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.quit()
                self.proc.wait(timeout=10)
            except (WorkerError, subprocess.TimeoutExpired):
                self.kill()
        self._stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _wait_stopped(pid: int, timeout_s: float = 1.0) -> None:
    """Return once `pid` shows as stopped in /proc (Linux; elsewhere at once), has exited, or
    after `timeout_s`. SIGSTOP takes effect within microseconds; this makes sure of it before
    the next worker's block starts."""
    stat = Path(f"/proc/{pid}/stat")
    end = time.perf_counter() + timeout_s
    while time.perf_counter() < end:
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("T", "t", "Z", "X"):
            return
        time.sleep(0.0001)


class WorkerPool:
    """All workers of a run, alive together; failures are collected per key, never raised.

    With `processes` > 1 each key gets that many worker processes of the same artifact, and round r
    of `blocks` runs in process r mod `processes`: a process has a small lasting offset of its own
    (1-3 % measured for quantized, ~0.8 % for onnx, cause unknown: experiments/paired-timing/
    processes-120.md, staggered.md), which a run with one process per variant carries whole into
    its ratios and which averages out over several. Other requests (accuracy, reloads)
    go to a key's first process."""

    def __init__(self, specs: Sequence[WorkerSpec], texts: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S,
                 startup_predictions: int | None = None, together: int = 1,
                 started_one: Callable[[int, int], None] | None = None, processes: int = 1,
                 freeze_idle: bool = CAN_FREEZE):
        """Start every worker. By default all start loading at once. With `startup_predictions`, in
        the order given, `together` at a time (1: alone; 2 on a 2-core machine: a paired A/B's two
        sides of a variant, one per core, so both start in the same conditions), each timing its own
        start-up as the fresh-process probe does (the others idle on their pipes meanwhile): then
        `startup` holds one probe sample per key and process, the keys' first processes all started
        before any second one (a key dropped because a later process failed keeps the records of
        those that started: each is a valid fresh-process start). `started_one(done, total)` is
        called as each is ready.

        `freeze_idle`: a worker is stopped (SIGSTOP) as soon as it is ready and after every reply,
        and continued for its next request (`Worker.freeze`), so that nothing but the worker being
        asked runs: no spinning tail of the previous one's threads, no pause needed to wait it out."""
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.freeze_idle = freeze_idle and CAN_FREEZE
        self.errors: dict[str, str] = {}
        self.lost: dict[str, list[str]] = {}  # key -> why each of its processes that died mid-run did
        self.processes: dict[str, list[Worker]] = {}
        self.startup: dict[str, list[ProbeResult]] = {}
        started = time.perf_counter()
        total = len(specs) * processes
        try:
            if startup_predictions is None:
                for _ in range(processes):
                    for spec in specs:
                        self.processes.setdefault(spec.key, []).append(Worker(spec, texts, timeout_s))
                for k, key in enumerate(list(self.processes), 1):
                    if self._wait(key):
                        self._freeze(key)
                    if started_one:
                        started_one(k * processes, total)
            else:
                step, done = max(1, together), 0
                for _ in range(processes):
                    # the same groups in every pass (a paired A/B's two sides of a variant start
                    # together), less the keys that have failed
                    for first in range(0, len(specs), step):
                        group = [spec for spec in specs[first:first + step] if spec.key not in self.errors]
                        for spec in group:
                            self.processes.setdefault(spec.key, []).append(
                                Worker(spec, texts, timeout_s, startup_predictions))
                        for spec in group:
                            if self._wait(spec.key):
                                worker = self.processes[spec.key][-1]
                                if "startup" in worker.info:  # wall: spawn -> handshake (a probe's: -> exit)
                                    self.startup.setdefault(spec.key, []).append(
                                        result_of(worker.info["startup"], wall_s=worker.ready_s or 0.0, source="worker"))
                        for spec in group:
                            self._freeze(spec.key)
                        done += len(group)
                        if started_one:
                            started_one(done, total)
        except BaseException:  # e.g. Ctrl-C while a worker starts: no `with` owns the pool yet
            self.kill_all()
            raise
        self.start_s = time.perf_counter() - started

    @property
    def workers(self) -> dict[str, Worker]:
        """Each live key's first process."""
        return {key: procs[0] for key, procs in self.processes.items()}

    def _wait(self, key: str) -> bool:
        """Wait for every process of `key` to be ready; False (and the key dropped) if one failed."""
        try:
            for worker in self.processes[key]:
                worker.ready()
            return True
        except WorkerError as err:
            self.drop(key, str(err))
            return False

    def _freeze(self, key: str, process: int | None = None) -> None:
        """Stop `key`'s process number `process` (all of them: None), if this pool freezes idle workers."""
        if self.freeze_idle and key in self.processes:
            procs = self.processes[key]
            for worker in procs if process is None else [procs[process % len(procs)]]:
                worker.freeze()

    @property
    def alive(self) -> list[str]:
        return list(self.processes)

    def drop(self, key: str, error: str) -> None:
        self.errors[key] = error
        self._kill(key)

    def _kill(self, key: str) -> None:
        for worker in self.processes.pop(key, []):
            worker.kill()
            worker.close()

    def request(self, key: str, msg: Mapping[str, Any], process: int = 0) -> dict[str, Any] | None:
        """The reply of `key`'s process number `process` (modulo how many it has), or None when it
        failed (then the key is dropped, all its processes, and its error kept)."""
        while key in self.processes:
            procs = self.processes[key]
            worker = procs[process % len(procs)]
            try:
                reply = worker.request(msg)
                self._freeze(key, process)
                return reply
            except WorkerError as err:
                if len(procs) > 1 and worker.proc.poll() is not None:
                    # one of several processes died (killed, out of memory): the others carry on
                    # with its rounds; the run records the loss, the variant's rows stand
                    procs.remove(worker)
                    worker.close()
                    self.lost.setdefault(key, []).append(str(err))
                    continue
                self.drop(key, str(err))
        return None

    def warm_up(self, n: int) -> dict[str, float]:
        """`n` untimed batch-1 calls in every process before the first round; the median per key
        over all its processes' calls."""
        out: dict[str, float] = {}
        if n:
            for key in self.alive:
                calls: list[float] = []
                for p in range(len(self.processes[key])):
                    reply = self.request(key, {"op": "latency", "start": 0, "n": n}, process=p)
                    if reply is None:
                        break
                    calls += reply["s"]
                if key in self.processes and calls:
                    out[key] = float(sorted(calls)[len(calls) // 2])
        return out

    def blocks(self, op: str, n: int, size: int = 1, repeat: Mapping[str, int] | None = None,
               warmup: int | None = None) -> Callable[[str, int], list[float] | None]:
        """A block runner for `interleave.run_rounds`: round r of every worker times the same inputs
        (batch-1 "latency" calls on texts r*n..r*n+n, that sequence `repeat[key]` times; or n
        "batch" calls of `size` texts), in the key's process r mod `processes`. With `warmup` W
        ("batch" only), each block first makes one untimed call on the W texts before its first
        batch (none if 0), and round r's timed batches start at r*(n+1)*size + size: the texts a
        block of n+1 batches with the first discarded would time, whatever W is."""
        def run(key: str, r: int) -> list[float] | None:
            msg: dict[str, Any] = {"op": op, "start": r * n * size, "n": n}
            if op == "batch":
                msg["size"] = size
                if warmup is not None:
                    msg.update(start=r * (n + 1) * size + size, warmup=warmup)
            if repeat and repeat.get(key, 1) > 1:
                msg["repeat"] = repeat[key]
            reply = self.request(key, msg, process=r)
            return None if reply is None else reply["s"]
        return run

    def kill_all(self) -> None:
        """Kill every worker now (a hung one never reads its quit message)."""
        for key in list(self.processes):
            self._kill(key)

    def close(self) -> None:
        """Ask every worker to quit first, then wait for each: they exit together, not in turn."""
        for procs in self.processes.values():
            for worker in procs:
                worker.quit()
        for key in list(self.processes):
            for worker in self.processes.pop(key):
                worker.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
