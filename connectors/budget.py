"""A request budget per target: at most `requests` calls to one CRM per fixed UTC window, shared by every task
that calls it, so that erp2crm leaves the rest of a CRM's API quota to the org's other integrations.

Windows are fixed and aligned to UTC: `per: day` is the UTC calendar day [00:00, 24:00), `per: hour` the UTC
clock hour [hh:00, hh+1:00). A window's count starts at 0 and is never carried over; a request is counted in the
window its worker's clock says it is in (keep workers on NTP: skew only matters at a window boundary). Every
attempt HttpClient makes counts, retries too (the CRM counts them), and the connection check's call as well.
`take(n)` is all or nothing: it grants n requests only when they fit in what is left.

When the budget is used up, `take` raises QuotaExhausted naming the target, the budget, the window and when it
resets, and nothing more is sent: the task fails without Airflow retries (erp2crm/tasks.py) and the next run (in
a later window, or after the budget is raised) sends what push_state does not hold as confirmed. (For a push
that stops mid-way to keep the writes of its earlier batches, erp2crm/push.py must save them before the error
propagates; tests/test_budget.py holds a strict xfail until it does.)

Where the count is kept (the target's `request_budget.store`):

- `local`: a JSON file per target under $ERP2CRM_VAR/budget/, read and written under an fcntl lock, so that
  parallel tasks on ONE machine share it exactly (LocalExecutor, one Celery worker, the demo). Workers on
  several machines would each count their own budget: use redis there.
- `redis`: one counter per target and window, `erp2crm:budget:<target>:<window start>` (2026-01-05 for a day,
  2026-01-05T13 for an hour), checked and incremented by one Lua script, so that tasks on any number of Celery
  workers share it exactly; it expires a day after its window ends. Redis is reached through the Airflow
  connection `erp2crm_redis` (host, port, password, login for an ACL user; db in the extra's `db` or the
  schema; extra `ssl: true`; extra `key_prefix` replaces `erp2crm:budget`, e.g. for two deployments sharing one
  Redis). The store is chosen in the config, never by whether the connection exists: a missing or misnamed
  connection is a config error instead of a silent fall back to per-machine budgets.

Redis configured but unreachable is a TransientError (Airflow retries the task with its backoff); it fails
closed rather than open: sending without a count could overspend a quota that is the org's (Salesforce's daily
limit is shared by all its integrations) and falling back to local counts would multiply the budget by the number
of workers, while a Redis restart passes in the time of a retry. Rejected credentials are a config error.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from erp2crm.errors import ConfigError, QuotaExhausted, TransientError

if TYPE_CHECKING:
    from erp2crm.config import TargetConfig

WINDOW_S = {"hour": 3600, "day": 86400}
REDIS_CONN_ID = "erp2crm_redis"
KEY_PREFIX = "erp2crm:budget"
KEEP_S = 86400  # a Redis counter outlives its window by a day (for looking into), then expires
REDIS_TIMEOUT_S = 5

# Check and increment in one step: parallel callers can never pass the limit between a read and a write.
# KEYS[1] the window's counter; ARGV n, limit, seconds until the key expires. Returns {granted 0/1, used}.
TAKE_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if used + n > tonumber(ARGV[2]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], n)
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {1, used}
"""


@dataclass(frozen=True)
class Window:
    per: str
    start: float  # epoch seconds, UTC-aligned
    end: float

    @property
    def label(self) -> str:
        """The window's start as it names the counter: 2026-01-05 (day) or 2026-01-05T13 (hour)."""
        return _utc(self.start).strftime("%Y-%m-%d" if self.per == "day" else "%Y-%m-%dT%H")

    def describe(self) -> str:
        start, end = _utc(self.start), _utc(self.end)
        if self.per == "day":
            return f"UTC day {start:%Y-%m-%d}"
        return f"UTC hour {start:%Y-%m-%d %H:00}–{end:%H:00}"


def window_at(t: float, per: str) -> Window:
    """The fixed UTC window holding epoch time t (POSIX time has no leap seconds: days are multiples of 86400)."""
    length = WINDOW_S[per]
    start = math.floor(t / length) * length
    return Window(per, start, start + length)


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def now() -> float:
    """Epoch seconds: the clock that budgets built from the config read (a test replaces it)."""
    return time.time()


class Counter(Protocol):
    where: str  # for messages: which store holds the count

    def take(self, target: str, window: Window, n: int, limit: int, now: float) -> tuple[bool, int]:
        """Add n to the target's count for the window when the result stays within limit: (granted, count)."""

    def used(self, target: str, window: Window) -> int: ...


class LocalCounter:
    """One JSON file per target, {"window": label, "used": n}, replaced atomically under an fcntl lock."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.where = f"counted on this machine in {self.directory}"

    def take(self, target: str, window: Window, n: int, limit: int, now: float) -> tuple[bool, int]:
        with self._locked(target):
            used = self._read(target, window)
            if used + n > limit:
                return False, used
            path = self.directory / f"{target}.json"
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps({"window": window.label, "per": window.per, "used": used + n}), encoding="utf-8")
            os.replace(tmp, path)
            return True, used + n

    def used(self, target: str, window: Window) -> int:
        with self._locked(target):
            return self._read(target, window)

    def _read(self, target: str, window: Window) -> int:
        path = self.directory / f"{target}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("window") != window.label or data.get("per") != window.per:
                return 0  # an earlier window: its count does not carry over
            return int(data["used"])
        except FileNotFoundError:
            return 0
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigError(f"request budget file {path} is unreadable ({e}): delete it to start the window's "
                              f"count from 0") from None

    @contextmanager
    def _locked(self, target: str):
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / f"{target}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes, also if the process dies
            yield
        finally:
            os.close(fd)


class RedisCounter:
    """A counter per target and window in Redis, `<prefix>:<target>:<window label>`, taken by one Lua script."""

    def __init__(self, client, prefix: str = KEY_PREFIX, address: str = ""):
        self.client, self.prefix, self.address = client, prefix.rstrip(":"), address
        self.where = f"shared in Redis {address}".rstrip()
        self._script = client.register_script(TAKE_LUA)

    def key(self, target: str, window: Window) -> str:
        return f"{self.prefix}:{target}:{window.label}"

    def take(self, target: str, window: Window, n: int, limit: int, now: float) -> tuple[bool, int]:
        ttl = max(1, math.ceil(window.end - now) + KEEP_S)
        granted, used = self._call(lambda: self._script(keys=[self.key(target, window)], args=[n, limit, ttl]))
        return bool(granted), int(used)

    def used(self, target: str, window: Window) -> int:
        return int(self._call(lambda: self.client.get(self.key(target, window))) or 0)

    def _call(self, fn):
        import redis

        try:
            return fn()
        except redis.AuthenticationError as e:
            raise ConfigError(f"Redis rejected the credentials of connection {REDIS_CONN_ID!r} ({e}): fix its "
                              f"login and password") from None
        except redis.RedisError as e:
            raise TransientError(f"request budget: Redis {self.address} (connection {REDIS_CONN_ID!r}) is "
                                 f"unreachable or failing ({type(e).__name__}: {e}); nothing was sent without "
                                 f"counting it, the task is retried") from None


class RequestBudget:
    """`take(n=1)` before each request: raises QuotaExhausted when the window's budget cannot hold n more."""

    def __init__(self, target: str, requests: int, per: str, counter: Counter,
                 clock: Callable[[], float] = time.time):
        if per not in WINDOW_S:
            raise ConfigError(f"request budget of {target!r}: per must be one of {', '.join(WINDOW_S)}, not {per!r}")
        self.target, self.requests, self.per, self.counter, self.clock = target, requests, per, counter, clock

    def take(self, n: int = 1) -> int:
        """Count n requests in the current window; the requests left in it. QuotaExhausted when they do not fit."""
        if n < 1:
            raise ValueError(f"take(n): n must be at least 1, not {n}")
        now = self.clock()
        window = window_at(now, self.per)
        granted, used = self.counter.take(self.target, window, n, self.requests, now)
        if not granted:
            raise QuotaExhausted(self._used_up(window, used, n, now))
        return self.requests - used

    def remaining(self) -> int:
        return max(0, self.requests - self.counter.used(self.target, window_at(self.clock(), self.per)))

    def _used_up(self, window: Window, used: int, n: int, now: float) -> str:
        wait = max(0, math.ceil(window.end - now))
        wait_s = f"{wait // 3600}h {wait % 3600 // 60:02d}m" if wait >= 3600 else f"{wait // 60}m {wait % 60:02d}s"
        asked = "" if n == 1 else f", {n} asked for"
        return (f"target {self.target!r}: request budget of {self.requests} requests per {self.per} used up "
                f"({used} used in the {window.describe()}{asked}; {self.counter.where}); it resets at "
                f"{_utc(window.end):%Y-%m-%dT%H:%M:%SZ} (in {wait_s}): a run from then on resumes the push, as does "
                f"one after its request_budget.requests is raised")


def redis_client():
    """A Redis client from the Airflow connection erp2crm_redis; it connects on first use."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    from connectors.hooks import get_connection

    conn = get_connection(REDIS_CONN_ID)
    extra = conn.extra_dejson or {}
    db = extra.get("db", conn.schema if (conn.schema or "").isdigit() else 0)
    try:
        db = int(db)
    except (TypeError, ValueError):
        raise ConfigError(f"connection {REDIS_CONN_ID!r}: db must be a number, not {db!r}") from None
    host, port = conn.host or "127.0.0.1", conn.port or 6379
    client = redis.Redis(host=host, port=port, db=db, username=conn.login or None, password=conn.password or None,
                         ssl=bool(extra.get("ssl")), socket_timeout=REDIS_TIMEOUT_S,
                         socket_connect_timeout=REDIS_TIMEOUT_S,
                         # a blip is retried here for about a second; longer outages go to Airflow's retries
                         retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), 3))
    return client, extra.get("key_prefix") or KEY_PREFIX, f"{host}:{port}/{db}"


def request_budget(target: TargetConfig, clock: Callable[[], float] | None = None) -> RequestBudget | None:
    """The target's budget from its config; None when it has none (no limit)."""
    config = target.request_budget
    if config is None:
        return None
    if config.store == "redis":
        counter: Counter = RedisCounter(*redis_client())
    else:
        from erp2crm.paths import var_dir

        counter = LocalCounter(var_dir() / "budget")
    return RequestBudget(target.name, config.requests, config.per, counter, clock or now)
