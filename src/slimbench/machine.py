"""Facts about the measuring machine, recorded with every result."""

from __future__ import annotations

import hashlib
import os
import platform
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    """CPU, cores, RAM, OS, Python and library versions; `id` is stable across hostnames."""
    import psutil

    from slimbench.build.context import library_versions

    cpu, cores = cpu_model(), os.cpu_count() or 1
    ram = psutil.virtual_memory().total
    ident = hashlib.sha256(f"{cpu}|{cores}|{round(ram / 2**30)}|{platform.machine()}".encode()).hexdigest()[:10]
    return {
        "id": ident, "label": f"{cpu}, {cores} cores, {ram / 2**30:.0f} GiB", "cpu": cpu, "cores": cores,
        "ram_bytes": ram, "os": platform.platform(), "hostname": platform.node(),
        "libraries": library_versions(),
    }
