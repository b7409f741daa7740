"""A run triggered without a logical date (the default in the UI, CLI and REST API) has no data interval: its
window spans one interval of the schedule, computed from the Task SDK's timetable that a task sees."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from airflow.sdk import DAG

from erp2crm.tasks import _schedule_interval

NOW = datetime(2026, 11, 23, 20, 10, 37, tzinfo=timezone.utc)


@pytest.mark.parametrize("schedule, expected", [
    ("@daily", timedelta(days=1)), ("@hourly", timedelta(hours=1)), ("0 2 * * *", timedelta(days=1)),
    ("@weekly", timedelta(days=7)), (None, timedelta(days=1)), ("@once", timedelta(days=1)),
])
def test_one_interval_of_the_schedule(schedule, expected):
    dag = DAG("manual_window", schedule=schedule, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert _schedule_interval(dag, NOW) == expected


def test_a_run_asked_for_exactly_on_a_cron_time_spans_one_interval():
    dag = DAG("manual_window", schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert _schedule_interval(dag, datetime(2026, 11, 23, tzinfo=timezone.utc)) == timedelta(days=1)
