"""The extraction window every source honours."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Window:
    """Rows whose last change is in [start, end), both UTC; start None means from the beginning."""
    start: datetime | None
    end: datetime
