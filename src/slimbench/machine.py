"""Facts about the measuring machine, recorded with every result.

A machine's `id` says which runs may be compared in absolute terms (the gate, the report's
"previous run of this machine"). A VM's CPU name is often only its vendor ("AMD EPYC") and the same
VM can come back on another host generation: seen here on 2026-12-02, when the "AMD EPYC, 2 cores"
of every earlier run (family 25, AVX2) returned as family 26 with AVX-512 VNNI. Its ratios to
`standard` moved by up to 26 % and its INT8 rows' accuracy by up to 0.4 points (other integer
kernels), under the same name. So the id hashes the CPU's family, model and stepping and the
instruction-set extensions that choose the runtimes' kernels, not only its name.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Iterable
from typing import Any

# Extensions that change which kernels torch (fbgemm/oneDNN), onnxruntime (MLAS) and NumPy's BLAS
# run: fp32 width (avx2, avx512f), INT8 dot products (vnni) and the AMX tiles.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def library_versions() -> dict[str, str]:
    """Python's and the measuring libraries' versions (recorded by builds and by results)."""
    from importlib.metadata import PackageNotFoundError, version

    from slimbench import __version__

    out = {"python": platform.python_version(), "slimbench": __version__}
    for pkg in ("torch", "transformers", "tokenizers", "onnxruntime", "onnx", "onnxscript", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def read_cpuinfo(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    out: dict[str, str] = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    if out:
                        break
                    continue
                key, _, value = line.partition(":")
                out.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return out


def cpu_model(info: dict[str, str]) -> str:
    return info.get("model name") or platform.processor() or platform.machine()


def cpu_generation(info: dict[str, str]) -> str:
    """The CPU's generation, e.g. 'family 26 model 2 stepping 1'; '' where /proc/cpuinfo does not say."""
    fields = (("cpu family", "family"), ("model", "model"), ("stepping", "stepping"))
    return " ".join(f"{name} {info[key]}" for key, name in fields if info.get(key))


def kernel_flags(flags: Iterable[str]) -> list[str]:
    have = set(flags)
    return [f for f in KERNEL_FLAGS if f in have]


def machine_id(cpu: str, generation: str, flags: Iterable[str], cores: int, ram_bytes: int, arch: str) -> str:
    key = f"{cpu}|{generation}|{','.join(flags)}|{cores}|{round(ram_bytes / 2**30)}|{arch}"
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def machine_facts() -> dict[str, Any]:
    """CPU (name, generation, the kernel-choosing extensions), cores, RAM, OS, Python and library
    versions; `id` is stable across hostnames and changes with the CPU's generation."""
    import psutil

    info = read_cpuinfo()
    cpu, cores = cpu_model(info), os.cpu_count() or 1
    generation, flags = cpu_generation(info), kernel_flags(info.get("flags", "").split())
    ram = psutil.virtual_memory().total
    details = "; ".join(x for x in (generation, ", ".join(flags)) if x)
    label = cpu + (f" ({details})" if details else "") + f", {cores} cores, {ram / 2**30:.0f} GiB"
    return {
        "id": machine_id(cpu, generation, flags, cores, ram, platform.machine()), "label": label, "cpu": cpu,
        "cpu_generation": generation, "cpu_flags": flags, "cores": cores, "ram_bytes": ram,
        "os": platform.platform(), "hostname": platform.node(), "libraries": library_versions(),
    }


def cpu_times(path: str = "/proc/stat") -> list[int]:
    """The machine's CPU time so far, in ticks, as /proc/stat's first line gives it: user, nice,
    system, idle, iowait, irq, softirq, steal, ... ([] where there is no /proc/stat)."""
    try:
        with open(path) as f:
            fields = f.readline().split()
    except OSError:
        return []
    return [int(x) for x in fields[1:]] if fields[:1] == ["cpu"] else []


STEAL = 7  # /proc/stat's eighth time: ticks the hypervisor ran another guest on this VM's CPUs


def steal_fraction(before: list[int], after: list[int]) -> float | None:
    """The share of the CPU time between two `cpu_times` readings that the hypervisor gave to other
    guests (steal): on a shared VM, the part of a slowdown no pairing of this VM's processes sees.
    None where /proc/stat has no steal column or no time passed."""
    if len(before) <= STEAL or len(after) <= STEAL:
        return None
    # guest and guest_nice (fields 9-10) are already counted in user and nice
    total = sum(after[:STEAL + 1]) - sum(before[:STEAL + 1])
    return (after[STEAL] - before[STEAL]) / total if total > 0 else None


class StealMeter:
    """Steal over consecutive stretches of a run: `lap()` is the share since the last lap (or since
    the meter was made), None where /proc/stat cannot say."""

    def __init__(self) -> None:
        self._last = cpu_times()

    def lap(self) -> float | None:
        now = cpu_times()
        share, self._last = steal_fraction(self._last, now), now
        return None if share is None else round(share, 4)
