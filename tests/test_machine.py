"""The machine's identity: two CPUs behind the same name are two machines."""

from __future__ import annotations

from pathlib import Path

from slimbench.machine import (
    cpu_generation,
    cpu_times,
    kernel_flags,
    machine_facts,
    machine_id,
    read_cpuinfo,
    steal_fraction,
)

# The first processor's lines of /proc/cpuinfo on this project's VM, before and on 2026-12-02
# (trimmed flags): the same "AMD EPYC", another generation.
ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse2 avx fma avx2 bmi2

processor\t: 1
model name\t: something else
"""
ZEN5 = ZEN3.replace("cpu family\t: 25", "cpu family\t: 26").replace("model\t\t: 1", "model\t\t: 2").replace(
    "avx2 bmi2", "avx2 bmi2 avx512f avx512bw avx512_vnni avx512_bf16")


def _facts(tmp_path: Path, text: str) -> tuple[str, str, list[str]]:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    info = read_cpuinfo(str(path))
    flags = kernel_flags(info["flags"].split())
    return info["model name"], cpu_generation(info), flags


def test_same_name_another_generation_is_another_machine(tmp_path):
    name3, gen3, flags3 = _facts(tmp_path, ZEN3)
    name5, gen5, flags5 = _facts(tmp_path, ZEN5)
    assert name3 == name5 == "AMD EPYC"  # the first processor's fields only
    assert gen3 == "family 25 model 1 stepping 1" and gen5 == "family 26 model 2 stepping 1"
    assert flags3 == ["avx2"] and flags5 == ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"]
    ram = 24 * 2**30
    zen3 = machine_id(name3, gen3, flags3, 2, ram, "x86_64")
    assert zen3 != machine_id(name5, gen5, flags5, 2, ram, "x86_64")
    assert zen3 == machine_id(name3, gen3, flags3, 2, ram + 2**20, "x86_64")  # RAM rounds to GiB
    assert zen3 != machine_id(name3, gen3, flags3, 4, ram, "x86_64")


def test_no_cpuinfo_still_gives_an_identity(tmp_path):
    assert read_cpuinfo(str(tmp_path / "absent")) == {}
    assert cpu_generation({}) == "" and kernel_flags([]) == []


def test_this_machine_s_facts_name_its_generation():
    facts = machine_facts()
    assert len(facts["id"]) == 10 and facts["cores"] >= 1
    if Path("/proc/cpuinfo").exists() and "cpu family" in Path("/proc/cpuinfo").read_text():
        assert facts["cpu_generation"].startswith("family ") and facts["cpu_generation"] in facts["label"]


def test_steal_is_the_other_guests_share_of_cpu_time(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  1000 0 100 800 0 0 0 100 50 0\ncpu0 500 0 50 400 0 0 0 50 25 0\n")
    before = cpu_times(str(stat))
    assert before == [1000, 0, 100, 800, 0, 0, 0, 100, 50, 0]
    stat.write_text("cpu  1600 0 200 900 0 0 0 300 80 0\n")
    after = cpu_times(str(stat))
    # 600 user + 100 system + 100 idle + 200 steal: 200 of 1000 ticks (guest is inside user already)
    assert steal_fraction(before, after) == 0.2
    assert steal_fraction(before, before) is None  # no time passed
    assert steal_fraction([1, 2, 3, 4], [2, 3, 4, 5]) is None  # an old kernel: no steal column
    assert cpu_times(str(tmp_path / "absent")) == []
