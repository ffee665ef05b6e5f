"""A timing worker: one process, one variant, one runtime, loaded once, timed in blocks on request.

The parent (`slimbench.measure.workers`) starts one or more workers per variant and keeps them all alive together,
so that latency can be sampled in interleaved rounds: every variant runs a short block each round,
and the drift of a shared machine lands on all of them alike. The parent blocks on the pipe while a
worker runs a block; an idle worker blocks on its stdin. Nothing in the pytest process (which may
hold torch, onnxruntime and other runners) ever shares a timing loop with a runtime.

Protocol (JSON lines; stdout is reserved for it, stray library output goes to stderr):
  parent -> {"protocol": 1, "artifact": DIR, "threads": N, "texts": [...], "extra_work": 0.0,
             "spawned": T0, "n_predict": 5}               (spawned: only when started on its own)
  worker -> {"ok": true, "protocol": 1, "pid": P, "load_s": T, "runtime": NAME,
             "startup": {"phases_s": ..., "vmhwm_bytes": ..., "warm_latency_s": ...}}
A worker started while no other process starts times its own start-up exactly as the fresh-process
probe does (`probes.start_runner`), and its handshake carries that record: it is a probe sample.
  parent -> {"op": "latency", "start": K, "n": N, "repeat": R}  batch-1 predict on texts[K..K+N) (cyclic),
                                                            the whole sequence R times (default 1)
         -> {"op": "batch", "start": K, "size": B, "n": N, "warmup": W}
                                                            N calls of predict on B texts, after one
                                                            untimed call on the W texts before K (default 0)
         -> {"op": "predict_all", "batch_size": 64}          labels of every text (for accuracy), and the time
         -> {"op": "reload", "n": N}                         warm in-process reload times
         -> {"op": "quit"}
  worker -> {"ok": true, "s": [seconds, ...]} | {"ok": true, "labels": [...]} | {"ok": false, "error": MSG}

Keep the top-level imports tiny: the worker imports its runtime only after the handshake.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

PROTOCOL = 1
PARENT_ENV = "SLIMBENCH_WORKER_PARENT"  # the parent's pid, to catch a parent that died before prctl


def _timed_calls(fn: Callable[[Sequence[str]], Any], batches: Sequence[Sequence[str]]) -> list[float]:
    """perf_counter around each call, garbage collector off (as pytest-benchmark's disable_gc)."""
    out: list[float] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for batch in batches:
            t = time.perf_counter()
            fn(batch)
            out.append(time.perf_counter() - t)
    finally:
        if enabled:
            gc.enable()
    return out


def _cyclic(texts: Sequence[str], start: int, n: int) -> list[str]:
    return [texts[(start + i) % len(texts)] for i in range(n)]


class Server:
    """The worker's state: the runner and the texts it is timed on."""

    def __init__(self, request: dict[str, Any], entered: float | None = None):
        self.artifact = str(request["artifact"])
        self.threads = int(request["threads"])
        self.texts: list[str] = list(request["texts"])
        if not self.texts:
            raise ValueError("the worker needs at least one text")
        self.extra_work = float(request.get("extra_work") or 0.0)
        self.startup: dict[str, Any] | None = None
        if request.get("spawned") is not None and entered is not None:
            # Started on its own: time the start-up exactly as the fresh-process probe does.
            from slimbench.runtimes.probes import start_runner

            runner, self.startup = start_runner(Path(self.artifact), self.threads, self.texts,
                                                int(request.get("n_predict", 0)), float(request["spawned"]), entered,
                                                self.extra_work)
            if runner is None:
                from slimbench.errors import SlimbenchError

                raise SlimbenchError(str(self.startup.get("error", "start-up failed")))
            self.runner = runner
            self.load_s = float(self.startup["phases_s"]["load"])
            return
        from slimbench.runtimes.runners import open_runner

        t = time.perf_counter()
        self.runner = self._open(open_runner)
        self.load_s = time.perf_counter() - t
        self.runner.predict(self.texts[:1])  # first prediction: lazy initialisation is not a sample

    def _open(self, open_runner: Callable[..., Any]) -> Any:
        runner = open_runner(self.artifact, threads=self.threads)
        if self.extra_work:
            from slimbench.runtimes.runners import ExtraWorkRunner

            runner = ExtraWorkRunner(runner, self.extra_work)
        return runner

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "latency":
            batches = [[t] for t in _cyclic(self.texts, int(msg["start"]), int(msg["n"]))] * int(msg.get("repeat", 1))
            return {"ok": True, "s": _timed_calls(self.runner.predict, batches)}
        if op == "batch":
            size, start, warmup = int(msg["size"]), int(msg["start"]), int(msg.get("warmup", 0))
            if warmup:
                self.runner.predict(_cyclic(self.texts, start - warmup, warmup))
            batches = [_cyclic(self.texts, start + k * size, size) for k in range(int(msg["n"]))]
            return {"ok": True, "s": _timed_calls(self.runner.predict, batches)}
        if op == "predict_all":
            from slimbench.runtimes.runners import predict_in_batches

            t = time.perf_counter()
            labels = predict_in_batches(self.runner, self.texts, int(msg.get("batch_size", 64)))
            return {"ok": True, "labels": labels, "s": [time.perf_counter() - t]}
        if op == "reload":
            from slimbench.runtimes.runners import open_runner

            times = []
            for _ in range(int(msg["n"])):
                t = time.perf_counter()
                runner = open_runner(Path(self.artifact), threads=self.threads)
                times.append(time.perf_counter() - t)
                runner.close()
            return {"ok": True, "s": times}
        return {"ok": False, "error": f"unknown worker op {op!r}"}


def _reply(out: IO[str], data: dict[str, Any]) -> None:
    out.write(json.dumps(data) + "\n")
    out.flush()


def serve(inp: IO[str], out: IO[str], entered: float | None = None) -> int:
    """Answer requests until "quit" or end of input; a failing request is an error reply, not a crash.
    `entered` is when the interpreter reached main (for the start-up record)."""
    line = inp.readline()
    if not line:
        return 1
    try:
        request = json.loads(line)
        if int(request.get("protocol", -1)) != PROTOCOL:
            _reply(out, {"ok": False, "error": f"worker protocol {PROTOCOL}, parent sent {request.get('protocol')!r}; "
                                              "the two sides must run compatible slimbench versions"})
            return 1
        server = Server(request, entered)
    except Exception as err:  # the message reaches the parent as this variant's failure
        _reply(out, {"ok": False, "error": _describe(err)})
        return 1
    hello: dict[str, Any] = {"ok": True, "protocol": PROTOCOL, "pid": os.getpid(), "load_s": server.load_s,
                             "runtime": getattr(server.runner, "name", "")}
    if server.startup is not None:
        hello["startup"] = server.startup
    # Before the handshake, after the start-up phases it times: the parent may stop this worker as
    # soon as the handshake arrives, and a worker stopped before prctl could outlive a killed parent.
    _die_with_parent()
    _reply(out, hello)
    for line in inp:
        msg = json.loads(line)
        if msg.get("op") == "quit":
            break
        try:
            _reply(out, server.handle(msg))
        except Exception as err:
            _reply(out, {"ok": False, "error": _describe(err)})
    server.runner.close()
    return 0


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the parent exits. The parent stops idle
    workers (SIGSTOP, `workers.Worker.freeze`): a stopped worker cannot read the end of its input,
    and a parent killed outright would otherwise leave it stopped for good. SIGKILL ends a stopped
    process too. Elsewhere (no prctl) the worker exits at the end of its input, as before. (The
    kernel ties this to the parent *thread* that started the worker: start pools from a thread
    that outlives them, as the main thread does.)"""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit() and os.getppid() != int(parent):  # the parent died before prctl
        os._exit(1)


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def main() -> int:
    entered = time.time()
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return serve(sys.stdin, proto, entered)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: unloading torch takes a second or two per worker and a pool
    # closes many of them; every reply has been flushed and the OS frees the rest.
    os._exit(code)
