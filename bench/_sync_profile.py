"""Hot spots per stage from a py-spy profile of one sync run (bench/sync_bench.py --profile).

py-spy samples the run's process (and its forked workers) from outside, every thread, `--format raw --threads`: one
line per distinct stack, "thread;frame;...;frame count", root first. A sample belongs to the stage whose pipeline
function (erp2crm/pipeline.py: extract_source, validate_staged, ...) is on its stack; samples of the main thread
without one are Airflow's own work around the tasks; other threads are counted apart (mostly waiting). Shares are
of samples, so with forked workers a stage can hold more samples than its wall time. Per stage: the functions with the largest share of the
stage's samples, by self time (the frame at the top of the stack) and by inclusive time (anywhere on the stack).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

STAGES = {"begin_run": "begin", "extract_source": "extract", "validate_staged": "validate:staging",
          "reconcile_customers": "reconcile", "validate_customers": "validate:unified_customer",
          "enrich_profiles": "enrich", "validate_profiles": "validate:profile", "push_target": "push",
          "finish_run": "finish"}
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _frame(text: str) -> tuple[str, str]:
    m = FRAME.match(text.strip())
    if not m:
        return text.strip(), ""
    path = m["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return m["func"], path


OUTSIDE = "main thread outside the stages (Airflow: DAG run loop, task start, in-process API server, XCom)"
OTHER_THREADS = "other threads (Airflow's API server event loop, the benchmark's memory sampler)"


def _stage_of(frames: list[tuple[str, str]]) -> str:
    for func, path in frames:
        if path.endswith("erp2crm/pipeline.py") and func in STAGES:
            return STAGES[func]
    if any(func == "<module>" and path.endswith("sync_bench.py") for func, path in frames[:3]):
        return OUTSIDE
    return OTHER_THREADS


def analyse(raw_files: list[Path], top: int = 12) -> dict:
    stacks: Counter = Counter()
    for raw in raw_files:
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[stack] += int(count)
    per_stage: dict[str, Counter] = defaultdict(Counter)
    self_time: dict[str, Counter] = defaultdict(Counter)
    inclusive: dict[str, Counter] = defaultdict(Counter)
    for stack, count in stacks.items():
        frames = [_frame(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f[0].startswith(("process ", "thread "))]
        if not frames:
            continue
        stage = _stage_of(frames)
        per_stage[stage]["samples"] += count
        func, path = frames[-1]
        self_time[stage][f"{func} ({path})"] += count
        for name in {f"{fn} ({p})" for fn, p in frames}:
            inclusive[stage][name] += count
    # shares of the run: of the samples of the main thread (and forked workers), not of the mostly idle other threads
    total = sum(c["samples"] for stage, c in per_stage.items() if stage != OTHER_THREADS)
    out = {"total_samples": total, "stages": {}}
    for stage, c in sorted(per_stage.items(), key=lambda kv: (kv[0] == OTHER_THREADS, -kv[1]["samples"])):
        n = c["samples"]
        incl = [(name, k) for name, k in inclusive[stage].most_common() if k < 0.97 * n]  # drop the frames every sample has
        out["stages"][stage] = {
            "samples": n, "share_of_run": round(n / total, 3) if total and stage != OTHER_THREADS else None,
            "top_self": [{"function": name, "share": round(k / n, 3)} for name, k in self_time[stage].most_common(top)],
            "top_inclusive": [{"function": name, "share": round(k / n, 3)} for name, k in incl[:top * 2]],
        }
    return out


def render(report: dict, stages: int = 4, top: int = 8) -> str:
    lines = [f"py-spy samples: {report['total_samples']:,}"]
    for stage, s in list(report["stages"].items())[:stages]:
        share = "" if s["share_of_run"] is None else f" ({s['share_of_run']:.0%} of the run)"
        lines.append(f"\n== {stage}: {s['samples']:,} samples{share}")
        lines.append("  self time:")
        lines += [f"    {x['share']:6.1%}  {x['function']}" for x in s["top_self"][:top]]
        lines.append("  inclusive:")
        lines += [f"    {x['share']:6.1%}  {x['function']}" for x in s["top_inclusive"][:top * 2]]
    return "\n".join(lines)
