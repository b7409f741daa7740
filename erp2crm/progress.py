"""Progress of a long local run (the demo, a benchmark): a bar of the sync's stages, read from the hub store's
run history while the run goes on in the same process.

On a terminal it is a transient rich progress bar on stderr; elsewhere (a log, CI) one line per finished stage.
It only reads what the stages record, so it shows the same stages a run report does.
"""
from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import TextIO

from hub import HubStore
from hub.store import utcnow

FIXED_STAGES = ("validate:staging", "reconcile", "validate:unified_customer", "enrich", "validate:profile")


def expected_stages(sources: list[str], targets: list[str]) -> list[str]:
    return [f"extract:{s}" for s in sources] + list(FIXED_STAGES) + [f"push:{t}" for t in targets]


class StageProgress:
    """`with StageProgress(hub_url, expected):` around a run started after entering. It reads the hub through
    an engine of its own, from a thread of its own."""

    def __init__(self, hub_url, expected: list[str], stream: TextIO | None = None, interval_s: float = 0.5):
        self.hub_url, self.expected, self.interval_s = hub_url, expected, interval_s
        self._hub: HubStore | None = None
        self.stream = stream or sys.stderr
        self.since: datetime | None = None
        self.done: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="erp2crm-progress", daemon=True)
        self._bar = None

    def __enter__(self) -> "StageProgress":
        self.since = utcnow()
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("[bold]sync[/bold] {task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                                 console=Console(file=self.stream))
            self._task = self._bar.add_task("starting", total=len(self.expected))
            self._bar.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()  # the stages that finished since the last look
        if self._bar is not None:
            self._bar.stop()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._poll()
            except Exception:  # noqa: BLE001 - the hub may not exist yet, or be busy: look again later
                continue

    def _poll(self) -> None:
        if self._hub is None:
            self._hub = HubStore(self.hub_url)
        hub = self._hub
        runs = [r for r in hub.last_runs(1) if r["started_at"] >= self.since.replace(tzinfo=None)]
        if not runs:
            return
        finished = list(hub.stages(runs[0]["run_id"])["stage"])
        for stage in [s for s in finished if s not in self.done]:  # parallel stages finish in any order
            self.done.append(stage)
            if self._bar is None:
                self.stream.write(f"sync: {stage} done ({len(self.done)}/{len(self.expected)})\n")
                self.stream.flush()
        if self._bar is not None:
            running = next((s for s in self.expected if s not in self.done), "finishing")
            self._bar.update(self._task, completed=len(self.done), description=running)
