"""Writes the report's golden input fixtures (hand-picked numbers, no model): run it to re-create them.

    .venv/bin/python tests/golden/report/make_fixtures.py

machine_a.json            7 variants: a noisy `standard`, `light` whose load failed, an untrained
                          `ultra-light`, `quantized` without a memory measurement, a fully failed `broken`;
                          accuracy with the paired counts vs standard (the accuracy-ratio CIs)
machine_a_baseline.json   an older run of machine A (onnx-int8 was faster, ultra-light-onnx-int8 bigger)
machine_b.json            a second machine, three variants, latency figures without raw samples
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slimbench.stats import summarize

HERE = Path(__file__).parent
# Relative shapes of 20 latency samples (median 1.0): a quiet one and a noisy one.
QUIET = [0.93, 0.95, 0.96, 0.97, 0.98, 0.98, 0.99, 0.99, 1.0, 1.0, 1.0, 1.01, 1.01, 1.02, 1.03, 1.04, 1.06, 1.09,
         1.15, 1.4]
NOISY = [0.55, 0.6, 0.62, 0.7, 0.8, 0.9, 0.95, 1.0, 1.0, 1.0, 1.02, 1.05, 1.1, 1.2, 1.25, 1.3, 1.4, 1.6, 2.0, 3.0]
# The same quiet shape in another order, slightly shifted: a re-run that only differs by noise.
QUIET_RERUN = [1.01, 0.97, 1.0, 1.05, 0.96, 1.02, 0.99, 1.41, 0.98, 1.0, 0.94, 1.03, 1.0, 1.08, 0.99, 1.01, 1.16,
               0.97, 1.04, 0.98]


def fig(value: float, unit: str, n: int = 1, samples: list[float] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"value": value, "unit": unit, "n": n}
    if samples is not None and len(samples) > 1:
        s = summarize(samples)
        out.update(min=s.min, max=s.max, iqr=s.iqr)
    return out


def med(samples: list[float], unit: str) -> dict[str, Any]:
    return fig(summarize(samples).median, unit, len(samples), samples)


def r(xs: list[float], scale: float) -> list[float]:
    return [round(x * scale, 9) for x in xs]


def context(variant: str, runtime: str, precision: str, untrained: bool = False) -> dict[str, Any]:
    return {"threads": 2, "spec_hash": f"{variant}-hash", "runtime": runtime, "precision": precision,
            "description": "", "dataset": "movie-snippets", "artifact": f"/cache/artifacts/{variant}",
            "untrained": untrained}


def size(total: int, weights: int, gz: int, params: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"total_bytes": fig(total, "B", 3), "weights_bytes": fig(weights, "B"), "gzip_bytes": fig(gz, "B", 3),
            "parameters": fig(params, "count"), "sparsity": fig(0.0, "ratio")}, {}


def load(interp: list[float], imp: list[float], ld: list[float], first: list[float], warm: list[float]
         ) -> tuple[dict[str, Any], dict[str, Any]]:
    samples = {"interpreter_s": interp, "import_s": imp, "load_s": ld, "first_predict_s": first,
               "warm_reload_s": warm}
    total = [sum(v) for v in zip(interp, imp, ld, first, strict=True)]
    figures = {k: med(v, "s") for k, v in samples.items() if k != "warm_reload_s"}
    figures["start_to_first_prediction_s"] = med(total, "s")
    figures["warm_reload_s"] = med(warm, "s")
    return figures, samples


def memory(after_import: list[float], after_load: list[float], after_inf: list[float], child_p50: float
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    figures = {"baseline_rss_bytes": med(after_import, "B"),
               "load_increment_bytes": med([b - a for a, b in zip(after_import, after_load, strict=True)], "B"),
               "inference_increment_bytes": med([b - a for a, b in zip(after_load, after_inf, strict=True)], "B"),
               "peak_rss_bytes": med(after_inf, "B"), "child_latency_p50_s": fig(child_p50, "s", 150)}
    return figures, {"after_import": after_import, "after_load": after_load, "after_inference": after_inf}


def latency(samples: list[float], keep: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    s = summarize(samples)
    n = s.n
    figures = {"p50_s": fig(s.median, "s", n), "p90_s": fig(s.p90, "s", n), "p99_s": fig(s.p99, "s", n),
               "mean_s": fig(s.mean, "s", n), "min_s": fig(s.min, "s", n), "iqr_s": fig(s.iqr, "s", n)}
    return figures, ({"latency_s": samples} if keep else {})


def throughput(batch_s: list[float], batch: int = 32) -> tuple[dict[str, Any], dict[str, Any]]:
    per = summarize(batch_s).median
    return ({"sentences_per_s": fig(batch / per, "1/s", len(batch_s)), "batch_s": med(batch_s, "s"),
             "batch_size": fig(batch, "count")}, {"batch_s": batch_s})


def accuracy(acc: float, f1: float, agree: float, n: int = 1072,
             only: tuple[int, int] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """`only`: (sentences only standard gets right, only this variant), consistent with acc and agree."""
    out = {"accuracy": fig(acc, "ratio", n), "macro_f1": fig(f1, "ratio", n),
           "agreement_with_standard": fig(agree, "ratio", n)}
    if only is not None:
        out.update(only_standard_right=fig(only[0], "count", n), only_variant_right=fig(only[1], "count", n))
    return out, {}


def bench(variant: str, metric: str, ctx: dict[str, Any], result: tuple[dict[str, Any], dict[str, Any]]
          ) -> dict[str, Any]:
    figures, samples = result
    return {"group": None, "name": f"test_{metric}[{variant}]", "fullname": f"bench/test_{metric}.py::test_{metric}[{variant}]",
            "params": {"variant": variant}, "param": variant,
            "extra_info": {"slimbench_schema": 1, "variant": variant, "metric": metric, "status": "ok",
                           "figures": figures, "samples": samples, "context": ctx},
            "stats": {"min": 0.001, "max": 0.002, "mean": 0.0015, "stddev": 0.0001, "rounds": 1, "median": 0.0015}}


def failure(variant: str, metric: str, error: str, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"slimbench_schema": 1, "variant": variant, "metric": metric, "status": "failed", "error": error,
            "figures": {}, "samples": {}, "context": ctx or {"threads": 2}}


def document(machine: dict[str, Any], commit: dict[str, Any], when: str, benchmarks: list[dict[str, Any]],
             failures: list[dict[str, Any]]) -> dict[str, Any]:
    return {"machine_info": {"node": machine["hostname"], "python_version": "3.11.7", "system": "Linux",
                             "slimbench_machine": machine},
            "commit_info": commit, "benchmarks": benchmarks, "datetime": when, "version": "5.3.1",
            "slimbench": {"schema": 1, "failures": failures}}


LIBRARIES = {"python": "3.11.7", "slimbench": "0.1.0", "torch": "2.13.0+cpu", "transformers": "5.23.0",
             "tokenizers": "0.23.3", "onnxruntime": "1.31.1", "numpy": "2.4.6"}
MACHINE_A = {"id": "a1a1a1a1a1", "label": "AMD EPYC, 2 cores, 24 GiB", "cpu": "AMD EPYC", "cores": 2,
             "ram_bytes": 25276502016, "os": "Linux-6.18.44-x86_64-with-glibc2.36", "hostname": "vm-a",
             "libraries": LIBRARIES}
MACHINE_B = {"id": "b2b2b2b2b2", "label": "Intel Xeon Gold 6338, 4 cores, 16 GiB", "cpu": "Intel Xeon Gold 6338",
             "cores": 4, "ram_bytes": 17179869184, "os": "Linux-6.1.0-x86_64-with-glibc2.36", "hostname": "ci-b",
             "libraries": {**LIBRARIES, "onnxruntime": "1.31.0"}}
BROKEN_ERROR = ("artifact /cache/artifacts/broken-1234 is corrupt: model.onnx | truncated (expected 23,456,789 "
                "bytes, found 1,024)\nrebuild it with `slimbench build --variants broken --force`")


def machine_a() -> dict[str, Any]:
    std, light, ul = context("standard", "torch", "fp32"), context("light", "torch", "fp32"), \
        context("ultra-light", "torch", "fp32", untrained=True)
    q, oi8, uo = context("quantized", "torch", "int8"), context("onnx-int8", "onnxruntime", "int8"), \
        context("ultra-light-onnx-int8", "onnxruntime", "int8")
    benchmarks = [
        bench("standard", "size", std, size(91_612_345, 90_868_376, 84_123_456, 22_713_602)),
        bench("light", "size", light, size(60_412_000, 59_668_031, 55_502_100, 15_621_890)),
        bench("ultra-light", "size", ul, size(17_240_118, 16_496_149, 15_980_221, 4_310_530)),
        bench("quantized", "size", q, size(59_301_772, 58_557_803, 41_208_664, 22_713_602)),
        bench("onnx-int8", "size", oi8, size(23_501_220, 22_757_251, 19_800_412, 22_713_602)),
        bench("ultra-light-onnx-int8", "size", uo, size(2_301_876, 1_590_402, 1_702_330, 1_623_554)),
        bench("standard", "load", std, load([0.11, 0.12, 0.11, 0.13, 0.12], [4.02, 3.95, 4.1, 3.98, 4.05],
                                            [1.21, 1.18, 1.25, 1.2, 1.22], [0.092, 0.088, 0.095, 0.09, 0.091],
                                            [0.45, 0.44, 0.46])),
        bench("ultra-light", "load", ul, load([0.11, 0.11, 0.12, 0.11, 0.12], [3.96, 4.0, 3.97, 4.01, 3.99],
                                              [0.21, 0.2, 0.22, 0.21, 0.2], [0.03, 0.031, 0.029, 0.03, 0.03],
                                              [0.08, 0.08, 0.09])),
        bench("quantized", "load", q, load([0.12, 0.11, 0.12, 0.12, 0.13], [4.0, 4.04, 3.99, 4.02, 4.01],
                                           [1.02, 1.05, 1.0, 1.03, 1.01], [0.071, 0.07, 0.072, 0.069, 0.07],
                                           [0.61, 0.6, 0.62])),
        bench("onnx-int8", "load", oi8, load([0.08, 0.08, 0.09, 0.08, 0.08], [0.17, 0.18, 0.17, 0.17, 0.18],
                                             [0.21, 0.2, 0.22, 0.21, 0.21], [0.004, 0.004, 0.005, 0.004, 0.004],
                                             [0.19, 0.2, 0.19])),
        bench("ultra-light-onnx-int8", "load", uo, load([0.08, 0.08, 0.08, 0.09, 0.08], [0.07, 0.07, 0.08, 0.07, 0.07],
                                                        [0.02, 0.02, 0.02, 0.03, 0.02],
                                                        [0.001, 0.001, 0.001, 0.002, 0.001], [0.015, 0.016, 0.015])),
        bench("standard", "memory", std, memory([258.1e6, 258.2e6, 258.1e6], [393.2e6, 393.4e6, 393.1e6],
                                                [403.3e6, 403.5e6, 403.2e6], 0.0093)),
        bench("light", "memory", light, memory([258.1e6, 258.1e6, 258.2e6], [318.9e6, 319.0e6, 318.8e6],
                                               [325.6e6, 325.7e6, 325.5e6], 0.0047)),
        bench("ultra-light", "memory", ul, memory([258.0e6, 258.1e6, 258.0e6], [277.0e6, 277.1e6, 277.0e6],
                                                  [279.4e6, 279.5e6, 279.4e6], 0.0019)),
        bench("onnx-int8", "memory", oi8, memory([52.0e6, 52.1e6, 52.0e6], [189.0e6, 189.2e6, 189.1e6],
                                                 [195.0e6, 195.2e6, 195.1e6], 0.0026)),
        bench("ultra-light-onnx-int8", "memory", uo, memory([52.0e6, 52.0e6, 52.1e6], [64.8e6, 64.9e6, 64.8e6],
                                                            [67.1e6, 67.2e6, 67.1e6], 0.00038)),
        bench("standard", "latency", std, latency(r(NOISY, 0.00931))),
        bench("light", "latency", light, latency(r(QUIET, 0.0046))),
        bench("ultra-light", "latency", ul, latency(r(QUIET, 0.0019))),
        bench("quantized", "latency", q, latency(r(QUIET, 0.0061))),
        bench("onnx-int8", "latency", oi8, latency(r(QUIET, 0.0026))),
        bench("ultra-light-onnx-int8", "latency", uo, latency(r(QUIET, 0.00038))),
        bench("standard", "throughput", std, throughput(r(QUIET[::2], 0.178))),
        bench("light", "throughput", light, throughput(r(QUIET[::2], 0.091))),
        bench("ultra-light", "throughput", ul, throughput(r(QUIET[::2], 0.035))),
        bench("quantized", "throughput", q, throughput(r(QUIET[::2], 0.12))),
        bench("onnx-int8", "throughput", oi8, throughput(r(QUIET[::2], 0.048))),
        bench("ultra-light-onnx-int8", "throughput", uo, throughput(r(QUIET[::2], 0.0071))),
        bench("standard", "accuracy", std, accuracy(0.856, 0.8552, 1.0, only=(0, 0))),
        bench("light", "accuracy", light, accuracy(0.842, 0.8413, 0.934, only=(43, 28))),
        bench("ultra-light", "accuracy", ul, accuracy(0.512, 0.3402, 0.515)),
        bench("quantized", "accuracy", q, accuracy(0.848, 0.8474, 0.962, only=(25, 16))),
        bench("onnx-int8", "accuracy", oi8, accuracy(0.85, 0.8493, 0.967, only=(21, 14))),
        bench("ultra-light-onnx-int8", "accuracy", uo, accuracy(0.807, 0.8061, 0.861, only=(101, 48))),
    ]
    failures = [failure("light", "load", "fresh-process probe timed out after 300 s (killed)", light)]
    failures += [failure("broken", metric, BROKEN_ERROR)
                 for metric in ("size", "load", "memory", "latency", "throughput", "accuracy")]
    commit = {"id": "1234abcd5678ef901234abcd5678ef901234abcd", "time": "2026-11-22T07:40:00+00:00", "dirty": True,
              "project": "slimbench", "branch": "main"}
    return document(MACHINE_A, commit, "2026-11-22T07:52:26.757037+00:00", benchmarks, failures)


def machine_a_baseline() -> dict[str, Any]:
    std, light, q = context("standard", "torch", "fp32"), context("light", "torch", "fp32"), \
        context("quantized", "torch", "int8")
    onnx, oi8 = context("onnx", "onnxruntime", "fp32"), context("onnx-int8", "onnxruntime", "int8")
    uo = context("ultra-light-onnx-int8", "onnxruntime", "int8")
    benchmarks = [
        bench("standard", "size", std, size(91_612_345, 90_868_376, 84_123_456, 22_713_602)),
        bench("light", "size", light, size(60_412_000, 59_668_031, 55_502_100, 15_621_890)),
        bench("quantized", "size", q, size(59_301_772, 58_557_803, 41_208_664, 22_713_602)),
        bench("onnx", "size", onnx, size(91_420_002, 90_676_033, 84_012_118, 22_713_602)),
        bench("onnx-int8", "size", oi8, size(23_501_220, 22_757_251, 19_800_412, 22_713_602)),
        bench("ultra-light-onnx-int8", "size", uo, size(2_501_876, 1_790_402, 1_852_330, 1_623_554)),
        bench("standard", "load", std, load([0.12, 0.11, 0.12, 0.12, 0.11], [4.0, 4.06, 3.97, 4.03, 3.99],
                                            [1.22, 1.2, 1.19, 1.24, 1.21], [0.09, 0.093, 0.089, 0.092, 0.09],
                                            [0.44, 0.45, 0.45])),
        bench("light", "load", light, load([0.11, 0.12, 0.11, 0.11, 0.12], [3.98, 4.01, 4.0, 3.97, 4.02],
                                           [0.8, 0.82, 0.79, 0.81, 0.8], [0.05, 0.051, 0.049, 0.05, 0.05],
                                           [0.3, 0.31, 0.3])),
        bench("onnx-int8", "load", oi8, load([0.08, 0.08, 0.08, 0.09, 0.08], [0.17, 0.17, 0.18, 0.17, 0.17],
                                             [0.2, 0.21, 0.21, 0.2, 0.21], [0.004, 0.004, 0.004, 0.005, 0.004],
                                             [0.19, 0.19, 0.2])),
        bench("ultra-light-onnx-int8", "load", uo, load([0.08, 0.09, 0.08, 0.08, 0.08], [0.07, 0.07, 0.07, 0.08, 0.07],
                                                        [0.02, 0.02, 0.03, 0.02, 0.02],
                                                        [0.001, 0.001, 0.001, 0.001, 0.002], [0.015, 0.015, 0.016])),
        bench("standard", "memory", std, memory([258.1e6, 258.1e6, 258.2e6], [393.3e6, 393.2e6, 393.4e6],
                                                [403.4e6, 403.3e6, 403.5e6], 0.0092)),
        bench("quantized", "memory", q, memory([258.0e6, 258.1e6, 258.1e6], [351.9e6, 352.0e6, 352.1e6],
                                               [359.8e6, 359.9e6, 360.0e6], 0.0062)),
        bench("onnx-int8", "memory", oi8, memory([52.0e6, 52.0e6, 52.1e6], [174.1e6, 174.2e6, 174.1e6],
                                                 [180.1e6, 180.3e6, 180.2e6], 0.002)),
        bench("ultra-light-onnx-int8", "memory", uo, memory([52.0e6, 52.1e6, 52.0e6], [64.8e6, 64.8e6, 64.9e6],
                                                            [67.1e6, 67.1e6, 67.2e6], 0.00038)),
        bench("standard", "latency", std, latency(r(NOISY[::-1], 0.0094))),
        bench("light", "latency", light, latency(r(QUIET_RERUN, 0.0046))),
        bench("quantized", "latency", q, latency(r(QUIET_RERUN, 0.0062))),
        bench("onnx", "latency", onnx, latency(r(QUIET, 0.0081))),
        bench("onnx-int8", "latency", oi8, latency(r(QUIET_RERUN, 0.002))),
        bench("ultra-light-onnx-int8", "latency", uo, latency(r(QUIET_RERUN, 0.00038))),
        bench("standard", "throughput", std, throughput(r(QUIET_RERUN[::2], 0.177))),
        bench("onnx-int8", "throughput", oi8, throughput(r(QUIET_RERUN[::2], 0.037))),
        bench("ultra-light-onnx-int8", "throughput", uo, throughput(r(QUIET_RERUN[::2], 0.0071))),
        bench("standard", "accuracy", std, accuracy(0.856, 0.8552, 1.0)),
        bench("light", "accuracy", light, accuracy(0.842, 0.8413, 0.934)),
        bench("quantized", "accuracy", q, accuracy(0.848, 0.8474, 0.962)),
        bench("onnx", "accuracy", onnx, accuracy(0.856, 0.8552, 1.0)),
        bench("onnx-int8", "accuracy", oi8, accuracy(0.85, 0.8493, 0.967)),
        bench("ultra-light-onnx-int8", "accuracy", uo, accuracy(0.809, 0.8082, 0.864)),
    ]
    commit = {"id": "0badc0ffee0badc0ffee0badc0ffee0badc0ffee", "time": "2026-11-15T08:00:00+00:00", "dirty": False,
              "project": "slimbench", "branch": "main"}
    return document(MACHINE_A, commit, "2026-11-15T08:10:00+00:00", benchmarks, [])


def machine_b() -> dict[str, Any]:
    std, oi8 = context("standard", "torch", "fp32"), context("onnx-int8", "onnxruntime", "int8")
    uo = context("ultra-light-onnx-int8", "onnxruntime", "int8")
    benchmarks = [
        bench("standard", "size", std, size(91_612_345, 90_868_376, 84_123_456, 22_713_602)),
        bench("onnx-int8", "size", oi8, size(23_501_220, 22_757_251, 19_800_412, 22_713_602)),
        bench("ultra-light-onnx-int8", "size", uo, size(2_301_876, 1_590_402, 1_702_330, 1_623_554)),
        bench("standard", "load", std, load([0.06, 0.06, 0.07], [2.1, 2.05, 2.12], [0.61, 0.6, 0.63],
                                            [0.041, 0.04, 0.042], [0.22, 0.23, 0.22])),
        bench("onnx-int8", "load", oi8, load([0.05, 0.05, 0.05], [0.09, 0.1, 0.09], [0.11, 0.1, 0.11],
                                             [0.002, 0.002, 0.002], [0.1, 0.1, 0.11])),
        bench("ultra-light-onnx-int8", "load", uo, load([0.05, 0.05, 0.05], [0.04, 0.04, 0.04], [0.01, 0.01, 0.01],
                                                        [0.0006, 0.0006, 0.0007], [0.008, 0.008, 0.009])),
        bench("standard", "memory", std, memory([250.0e6, 250.1e6], [385.5e6, 385.6e6], [396.0e6, 396.2e6], 0.0041)),
        bench("onnx-int8", "memory", oi8, memory([50.1e6, 50.1e6], [170.0e6, 170.1e6], [176.2e6, 176.3e6], 0.0011)),
        bench("ultra-light-onnx-int8", "memory", uo, memory([50.0e6, 50.1e6], [62.9e6, 62.9e6], [65.0e6, 65.1e6],
                                                            0.00017)),
        bench("standard", "latency", std, latency(r(QUIET, 0.0042), keep=False)),
        bench("onnx-int8", "latency", oi8, latency(r(NOISY, 0.0011), keep=False)),
        bench("ultra-light-onnx-int8", "latency", uo, latency(r(QUIET, 0.00017), keep=False)),
        bench("standard", "accuracy", std, accuracy(0.856, 0.8552, 1.0)),
        bench("onnx-int8", "accuracy", oi8, accuracy(0.851, 0.8502, 0.968)),
        bench("ultra-light-onnx-int8", "accuracy", uo, accuracy(0.807, 0.8061, 0.861)),
    ]
    commit = {"id": "1234abcd5678ef901234abcd5678ef901234abcd", "time": "2026-11-22T07:40:00+00:00", "dirty": False,
              "project": "slimbench", "branch": "ci"}
    return document(MACHINE_B, commit, "2026-11-22T09:10:00+00:00", benchmarks, [])


def main() -> None:
    for name, doc in (("machine_a", machine_a()), ("machine_a_baseline", machine_a_baseline()),
                      ("machine_b", machine_b())):
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
