"""Time helpers: every timestamp derives from the anchor date and a random stream, never the wall clock."""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


class Clock:
    """The demo's 'now' (anchor_date 23:59:59 UTC) and uniform random instants before it."""

    def __init__(self, anchor_date: date):
        self.anchor_date = anchor_date
        self.end = datetime.combine(anchor_date, time(23, 59, 59))

    def years_ago(self, years: float) -> datetime:
        return self.end - timedelta(days=round(365.25 * years))

    @staticmethod
    def between(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
        """A whole-second instant in [lo, hi]; hi < lo collapses to lo so callers need not guard."""
        span = int((hi - lo).total_seconds())
        return lo + timedelta(seconds=rng.randint(0, span)) if span > 0 else lo

    def after(self, rng: random.Random, start: datetime, max_delta: timedelta,
              min_delta: timedelta = timedelta(0)) -> datetime:
        """An instant min_delta..max_delta after start, never past the anchor (keeps write <= now)."""
        return min(self.end, self.between(rng, start + min_delta, start + max_delta))

    @staticmethod
    def office_hours(rng: random.Random, day: date) -> datetime:
        """A time on `day` during Chinese office hours, 09:00-18:00 CST = 01:00-10:00 UTC."""
        return datetime.combine(day, time(1)) + timedelta(seconds=rng.randint(0, 9 * 3600))


def ts(value: datetime | None) -> str | None:
    """'YYYY-MM-DD HH:MM:SS' (values never carry microseconds)."""
    return value.isoformat(" ") if value is not None else None


def ds(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
