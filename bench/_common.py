"""Shared helpers for the benchmarks: machine description, peak-RSS measurement, result files.

Peak memory is the kernel's resident-set high-water mark, read with
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux). Before each timed run the high-water
mark is reset to the current RSS by writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0), so
the per-run figure is the peak of the process *during that run* (it still includes the input data
already resident). If the reset is not permitted, the figure is the process-wide peak so far and
``rss_reset_supported`` is false in the result file.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import statistics
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


def ensure_repo_on_path() -> None:
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info() -> dict:
    cpu_model = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                      if line.startswith("model name")), platform.processor() or "unknown")
    mem_kib = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal:")), None)
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable_cpus = None
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable_cpus,
        "mem_total_gib": round(mem_kib / 1024 ** 2, 1) if mem_kib else None,
        "python": platform.python_version(),
    }


def cpu_probe_s(repeat: int = 3) -> float:
    """Seconds of a fixed pure-Python loop (best of `repeat`), taken beside each measured run: this workplace's
    machines of one model ran the same code up to twice as slow at some hours, and a stage's time means little
    without the machine's speed at that moment."""
    import time

    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        sum(i * i for i in range(5_000_000))
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def library_versions(*names: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def rss_mib() -> float:
    """Current resident set size (VmRSS) in MiB."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size (ru_maxrss; KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the RSS high-water mark to the current RSS; False when the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def median(values):
    return statistics.median(values) if values else None


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def write_result(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def save(name: str, scale: float, out: Path | None, payload: dict) -> Path:
    """Write the result: bench/results/<name>.json at scale 1, <name>_scale<S>.json otherwise, or `out`."""
    if out is None:
        return write_result(name if scale == 1.0 else f"{name}_scale{scale:g}", payload)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return out


def verdict(target_met: bool | None) -> str:
    if target_met is None:
        return "no target at this scale"
    return "target met" if target_met else "TARGET MISSED"


def arg_parser(name: str, description: str, scale_help: str):
    """The options every benchmark takes: --scale, --runs, --seed, --out."""
    import argparse

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--scale", type=float, default=1.0, help=scale_help)
    ap.add_argument("--runs", type=int, default=3, help="timed runs; the median is reported (default 3)")
    ap.add_argument("--seed", type=int, default=20260701, help="numpy seed of the synthetic data")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"result file (default bench/results/{name}.json at scale 1.0, "
                         f"{name}_scale<S>.json otherwise)")
    return ap


def memory_report(includes: str, reset_ok: bool, rss_before: float, peaks: list[float], **extra: float) -> dict:
    """Peak RSS per timed run; `includes` says what was already resident when the runs started."""
    return {
        "method": "resource.getrusage(RUSAGE_SELF).ru_maxrss, high-water mark reset via "
                  f"/proc/self/clear_refs before each run (includes {includes})",
        "rss_reset_supported": reset_ok,
        "rss_before_runs_mib": round(rss_before, 1),
        "peak_rss_per_run_mib": [round(x, 1) for x in peaks],
        "peak_rss_mib": round(max(peaks), 1),
        **{k: round(v, 1) for k, v in extra.items()},
    }
