"""How each figure of a run was measured, in words computed from the run: the report's "how to
read this" list and its run metadata (settings, sample counts, stopping rules, steal).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from slimbench.analysis.results import LOAD_STOP_RULE, Run
from slimbench.render.grouping import MachineReport, machine_label
from slimbench.render.tables import code_names, fmt_date, fmt_set

# --- sections -------------------------------------------------------------------------------------

def threads_text(run: Run) -> str:
    return fmt_set([m.context["threads"] for m in run.measurements if m.context.get("threads") is not None])


def commit_text(run: Run) -> str:
    ident = str(run.commit.get("id") or "")[:12]
    if not ident:
        return "not recorded"
    text = f"`{ident}`"
    if run.commit.get("branch"):
        text += f" on `{run.commit['branch']}`"
    if run.commit.get("dirty"):
        text += " (with uncommitted changes)"
    return text


HOW_TO_READ = [
    "**size / gzip**: bytes on disk of everything the variant needs to run (weights, config, tokenizer), "
    "and of the same files gzip-compressed (the download); MB = 10⁶ bytes. **params**: parameters, millions.",
    "**cold load**: median, over fresh processes, of the time from process start to the first prediction "
    "(interpreter, runtime import, artifact load, first predict): what an application waits for at start-up. "
    "**1st pred.**: the first prediction alone, in that fresh process.",
    "**p50 / p90 / p99**: time per sentence at batch 1 through the public predict path (tokenize + forward + "
    "argmax), percentiles of **n** raw samples. **throughput**: sentences per second at a larger batch.",
    "**peak RSS**: the kernel's high-water mark (VmHWM) of a fresh process that loaded the variant and "
    "predicted, median over processes. It counts the mapped libraries' file-backed pages, whose number "
    "follows the kernel's page cache more than the variant, so compare it between rows of one run (results.json "
    "keeps the anonymous and file-backed split; the gate judges the peak less its file-backed pages).",
    "**accuracy / macro-F1**: on the held-out test split; `untrained` marks a randomly initialised variant, "
    "whose accuracy means nothing.",
    "**× columns**: ratios to `standard` measured in the same run. speed-up = standard p50 / variant p50, "
    "above 1 is faster (in a paired run: 1 / the paired p50 ratio of the interleaved rounds); size, memory and accuracy = variant / standard (below 1 is smaller; accuracy 0.99 "
    "keeps 99 % of standard's).",
    "**bold**: the best value of its column. **–**: not measured (or nothing to compare with). "
    "**failed**: the measurement failed; see below.",
]


def _ns(run: Run, metric: str, figure: str) -> str:
    return fmt_set([m.figures[figure].n for m in run.measurements
                     if m.metric == metric and m.ok and figure in m.figures])


def accuracy_batching(run: Run) -> str:
    """How the test sentences were batched for accuracy, when the run recorded it."""
    batches = {m.variant: m.context["timing"].get("batch") for m in run.measurements
               if m.metric == "accuracy" and m.ok and isinstance(m.context.get("timing"), dict)}
    alone = sorted(v for v, b in batches.items() if b == 1)
    batched = {b for b in batches.values() if isinstance(b, int) and b > 1}
    if not alone:
        return ""
    return (f" {', '.join(f'`{v}`' for v in alone)} predicted each sentence alone, as at batch 1: INT8 runtimes "
            "quantize activations with one scale over the whole batch, so a sentence's label could depend on "
            "the sentences batched with it"
            + (f"; the others in batches of {', '.join(map(str, sorted(batched)))}, whose labels do not depend on "
               "the batch." if batched else "."))


def _load_stopping(run: Run) -> str:
    """The early-stopping rule of the start-up probes, when the run used one."""
    timing = timing_record(run, "load") or {}
    least, most = timing.get("samples_range", (0, 0))
    if not least or least >= most:
        return ""
    spread = f"±{timing.get('spread', 0):.0%}"
    if timing.get("rule") == LOAD_STOP_RULE:
        how = (f" (at 3: while one of the three lay beyond {spread} of their median; at 4: while one of the middle "
               f"two lay beyond {spread} of the median of the four, since an outlier at either end cannot move the "
               "median of five)") if (least, most) == (3, 5) else ""
        return (f" Each variant got {least} probes, and more (up to {most}) only while the probes still allowed "
                f"could move its median start-up time beyond {spread}{how}: sampling stops where more could not "
                "change the figure (as pyperf does), so n differs between variants.")
    return (f" Each variant got {least} probes, and more (up to {most}) only while one of its start-up times lay "
            f"beyond {spread} of their median: sampling stops where the figure is tight "
            "(as pyperf does), so n differs between variants.")


def _worker_starts(run: Run) -> str:
    """Which of the start-up samples were the timing workers' own start-ups, when any were."""
    counts = {int(sum(m.samples.get("worker_start", []))) for m in run.measurements if m.metric == "load" and m.ok}
    counts.discard(0)
    if not counts:
        return ""
    return (f" The first {fmt_set(sorted(counts))} of a variant's processes were its timing workers, each timing "
            "its own start-up the same way, started one at a time while the workers started before them held their "
            "memory; such a start can be slower than a later fresh probe's (new memory, a page cache not yet warm): "
            "`worker_start` in results.json says which sample is which.")


def timing_record(run: Run, metric: str = "latency") -> dict[str, Any] | None:
    """How the run timed `metric` (None: results from before paired timing)."""
    return next((m.context["timing"] for m in run.measurements
                 if m.metric == metric and m.ok and isinstance(m.context.get("timing"), dict)), None)


def _timing_how(run: Run) -> str:
    how = timing_record(run)
    if not how:
        return " Timed in the measuring process, variant after variant (results from before paired timing)."
    procs = int(how.get("processes") or 1)
    return (" Timed out of the measuring process: "
            + ("one worker process per variant" if procs == 1 else
               f"{procs} worker processes per variant, the rounds alternating between them (a process's own "
               "lasting offset averages out)")
            + f", all {len(how.get('variants', []))} variants alive together, {how.get('rounds')} interleaved rounds of "
            f"{how.get('block')} calls per variant, order rotated each round"
            + (f", then up to {how['max_rounds']} in all for the variants whose ratio's 95 % CI was still wider "
               f"than ±{how['ci_half_width']:.0%}" + (f" while the phase was within its {how['max_s']:.0f}-s budget"
                                                      if how.get("max_s") else "")
               + _rounds_end(run, how) if how.get("max_rounds", 0) > (how.get("rounds") or 0)
               and how.get("ci_half_width") else "")
            + (f"; a variant whose block would last under {how['min_block_s'] * 1e3:.0f} ms repeated the round's "
               "sentences to about that length (" + ", ".join(f"{k} ×{r}" for k, r in how["repeat"].items()) + ")"
               if how.get("repeat") else "")
            + (", every worker but the one being timed stopped (SIGSTOP), so the previous worker's runtime "
               "threads, which spin on for a while after a call, cannot take a core" if how.get("frozen_idle") else "")
            + (f", a {how['settle_s'] * 1e3:.0f} ms pause before each block (the previous worker's runtime threads "
               "stop spinning)" if how.get("settle_s") else "")
            + (", the first call" if how.get("discard", 1) == 1 else f", the first {how['discard']} calls")
            + f" of each block discarded; throughput likewise in {how.get('throughput_rounds')} rounds"
            + _throughput_warmup_text(how)
            + ". Ratios to `standard` come from the paired rounds, with 95 % bootstrap intervals."
            + steal_text(how.get("steal") or {}))


def _throughput_warmup_text(how: Mapping[str, Any]) -> str:
    """How each throughput block began: results without the key timed two batches, the first dropped."""
    warmup = how.get("throughput_warmup")
    if warmup is None:
        return ""
    return (f" (one timed batch each, after an untimed call on {warmup} sentence{'s' if warmup != 1 else ''})"
            if warmup else " (one timed batch each, no call before it)")


def _rounds_end(run: Run, how: Mapping[str, Any]) -> str:
    """What ended the latency rounds, and which ratios' intervals stayed wider than the target."""
    target, ran = float(how["ci_half_width"]), how.get("rounds_run")
    wide = sorted(m.variant for m in run.measurements if m.metric == "latency" and m.ok
                  and (f := m.figures.get("p50_ratio")) is not None
                  and (width := f.relative_half_width) is not None and width > target)
    names = ", ".join(f"`{v}`" for v in wide)
    still = (f", the intervals of {names} still wider than ±{target:.0%}: this machine was noisy, and the "
             "intervals below show what the time bought" if wide else "")
    stopped = how.get("stopped")
    if stopped == "ci":
        return f" (every ratio reached that after {ran} rounds)"
    if stopped == "max_s":
        return f" (the budget ended them after {ran} rounds{still})"
    if stopped == "max_rounds":
        return f" (they ended at the {ran}-round limit{still})"
    return ""


STEAL_WARN = 0.05  # above this share of CPU time taken by other guests, say the host was contended
# the phases whose steal a run records (pytest bench's, and `slimbench compare`'s re-measurement)
STEAL_PHASES = {"latency": "of this machine's CPU time to other guests during the latency rounds",
                "throughput": "during throughput",
                "confirm latency": "while re-measuring a regression"}


def steal_text(steal: Mapping[str, float]) -> str:
    """What the hypervisor took (steal, from /proc/stat) while the rounds ran: a slowdown of the whole
    VM that pairing cancels in the ratios, but that makes every round noisier. The report's sentence
    and `slimbench compare`'s."""
    if "latency" not in steal:
        return ""
    text = (" The hypervisor gave " + " and ".join(f"{steal[phase]:.1%} {when}" for phase, when in STEAL_PHASES.items()
                                                  if phase in steal) + " (steal, /proc/stat)")
    if max(steal.values()) > STEAL_WARN:
        text += (f": above {STEAL_WARN:.0%}, the host was contended, its noise lands on some rounds and not on "
                 "others, and intervals are wider than on a quiet host")
    return text + "."


def _cached_labels(run: Run) -> str:
    cached = (timing_record(run) or {}).get("labels_cached") or []
    if not cached:
        return ""
    return (f" The labels of {code_names(sorted(cached))} (and their pass time) were read from the cache: an earlier "
            "pass (the build's own evaluation, or an earlier run) predicted them from the same artifact files with "
            "the same code, libraries, sentences, batch and threads, so predicting again would give the same labels.")


def _measured_how(run: Run) -> list[str]:
    metrics = {m.metric for m in run.measurements if m.ok}
    datasets = sorted({str(m.context["dataset"]) for m in run.measurements if m.context.get("dataset")})
    lines = {
        "size": "**size**: bytes on disk of every file the variant needs to run (weights, config, tokenizer); "
                "gzip = the same files at gzip -6; parameters counted in the artifact.",
        "load": f"**load**: {_ns(run, 'load', 'start_to_first_prediction_s')} fresh processes per variant, each "
                "timing its phases (interpreter start, runtime import, artifact load, first prediction); cold "
                "load = median of their sum; warm reload = re-opening in "
                + ("the variant's timing worker" if timing_record(run) else "the measuring process")
                + f" (median of {_ns(run, 'load', 'warm_reload_s')})."
                + (" The probes ran round-robin across variants, not one variant's in a row." if timing_record(run) else "")
                + _worker_starts(run) + _load_stopping(run),
        "memory": f"**memory**: peak RSS = the kernel's high-water mark (VmHWM) of {_ns(run, 'memory', 'peak_rss_bytes')} "
                  "fresh processes after load and batch-1 predictions, median; no sampler runs beside them.",
        "latency": f"**latency**: {_ns(run, 'latency', 'p50_s')} batch-1 predictions per variant through the public "
                   "predict path (tokenize + forward + argmax), each on the next test sentence; percentiles of "
                   "the raw samples." + _timing_how(run),
        "throughput": f"**throughput**: {_ns(run, 'throughput', 'sentences_per_s')} batches of "
                      f"{fmt_set([int(m.figures['batch_size'].value) for m in run.measurements if m.metric == 'throughput' and m.ok and 'batch_size' in m.figures])} "
                      "test sentences; sentences per second from the median batch time.",
        "accuracy": f"**accuracy**: {_ns(run, 'accuracy', 'accuracy')} test sentences"
                    + (f" of {code_names(datasets)}" if datasets else "")
                    + " (a fixed split never used for training or selection): accuracy, macro-F1, and agreement "
                      "with `standard`'s predictions."
                    + _cached_labels(run),
    }
    return [f"  - {text}" for metric, text in lines.items() if metric in metrics]


def metadata_section(report: MachineReport) -> list[str]:
    run = report.run
    sm = run.machine.get("slimbench_machine") or {}
    machine = [str(sm.get("cpu") or run.machine.get("processor") or "unknown CPU")]
    if sm.get("cpu_generation"):
        machine.append(str(sm["cpu_generation"]))
    if sm.get("cpu_flags"):
        machine.append(", ".join(sm["cpu_flags"]))
    if sm.get("cores"):
        machine.append(f"{sm['cores']} cores")
    if sm.get("ram_bytes"):
        machine.append(f"{sm['ram_bytes'] / 2**30:.1f} GiB RAM")
    if sm.get("os") or run.machine.get("system"):
        machine.append(str(sm.get("os") or run.machine.get("system")))
    machine.append(f"id `{run.machine_id}`")
    libraries = sm.get("libraries") or {}
    if not libraries and run.machine.get("python_version"):
        libraries = {"python": run.machine["python_version"]}
    results = f"`{Path(run.source).name}`"
    if report.older:
        results += "; earlier runs of this machine, not reported: " + code_names([Path(r.source).name for r in report.older])
    out = [f"### {report.label}", "",
           "- **Machine**: " + " · ".join(machine),
           f"- **Threads**: {threads_text(run)} (the same for every runtime)",
           "- **Libraries**: " + (", ".join(f"{k} {v}" for k, v in libraries.items()) or "not recorded"),
           f"- **Commit**: {commit_text(run)}",
           f"- **Date**: {fmt_date(run.datetime)}",
           f"- **Results**: {results}"]
    if report.baseline is not None:
        out.append(f"- **Baseline**: `{Path(report.baseline.source).name}` ({machine_label(report.baseline)}, "
                   f"commit {commit_text(report.baseline)}, {fmt_date(report.baseline.datetime)})")
    out += ["- **What was measured how**:", *_measured_how(run), ""]
    return out
