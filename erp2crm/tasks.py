"""Glue between Airflow tasks and the pipeline: classified errors decide whether Airflow retries.

A config or data error fails the task at once (AirflowFailException: retrying cannot help); a transient
error propagates and is retried with the DAG's backoff.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException

from erp2crm.errors import ConfigError, DataError, QuotaExhausted


def run(fn: Callable, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ConfigError, DataError) as e:
        raise AirflowFailException(f"[{e.kind} error, not retried] {e}") from e
    except QuotaExhausted as e:  # the next scheduled run resumes from the push state
        raise AirflowFailException(f"[quota used up, not retried] {e}") from e


def window() -> dict:
    """The run's extraction window and options from the Airflow context: the data interval and params, or the
    explicit period and source of a backfill (params start, end, source)."""
    import pandas as pd

    from erp2crm.errors import ConfigError

    ctx = get_current_context()
    params = ctx["params"]
    # Airflow 3 gives a run triggered without a logical date (the default in the UI, CLI and REST API) no data
    # interval: its window ends when it was asked for and spans one interval of the schedule.
    now = ctx.get("data_interval_end") or ctx["dag_run"].run_after
    common = {"run_id": ctx["run_id"], "dag_id": ctx["dag"].dag_id, "as_of": params.get("as_of") or now.isoformat()}
    if params.get("start") is None:
        start = ctx.get("data_interval_start") or now - _schedule_interval(ctx["dag"], now)
        return {**common, "window_start": start, "window_end": now,
                "full_refresh": bool(params.get("full_refresh")), "backfill": False, "sources": None}
    start, end = (pd.Timestamp(params[k]).tz_localize("UTC") for k in ("start", "end"))
    if end <= start:
        raise AirflowFailException(f"[config error, not retried] {ConfigError(f'backfill: end {end.date()} must be after start {start.date()}')}")
    return {**common, "window_start": start.to_pydatetime(), "window_end": end.to_pydatetime(), "full_refresh": False,
            "backfill": True, "sources": [params["source"]]}


def _schedule_interval(dag, now) -> timedelta:
    """The length of one interval of the DAG's schedule (between its cron times around `now`); a day for
    manual-only DAGs. Inside a task, `dag.timetable` is the Task SDK's, which cannot infer data intervals: its cron
    expression (presets already resolved) is read instead."""
    from datetime import datetime

    from croniter import croniter

    expression = getattr(dag.timetable, "expression", None)
    if not expression:
        return timedelta(days=1)
    last = croniter(expression, now).get_prev(datetime)
    return croniter(expression, last).get_next(datetime) - last
