"""A request budget per target (connectors/budget.py), counted on this machine or in Redis: parallel tasks share
it exactly, a window's count resets at the UTC day or hour boundary, every attempt HttpClient makes is taken from
it (retries too), and a push that runs out of it stops with QuotaExhausted after exactly the budgeted calls; a
later run finishes with the CRM holding exactly the expected records.

Redis tests use the machine's Redis 7 on 127.0.0.1:6379 with a key prefix of their own, deleted afterwards; they
are skipped where it is not running, except under CI, where that fails the run."""
from __future__ import annotations

import json
import multiprocessing
import os
import uuid
from calendar import timegm

import pytest

import connectors.budget as budget_module
from connectors.budget import KEY_PREFIX, LocalCounter, RequestBudget, request_budget, window_at
from emulators.hubspot import HubspotEmulator
from emulators.salesforce import SalesforceEmulator
from erp2crm.config import TargetConfig
from erp2crm.errors import ConfigError, QuotaExhausted, TransientError
from erp2crm.push import push
from hub import HubStore

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
SF_TOKEN, HS_TOKEN = "budget-test-token", "budget-test-hubspot-token"


def at(*utc) -> float:
    """Epoch seconds of a UTC date and time: at(2026, 1, 5, 23, 59)."""
    return float(timegm((*utc, *(0,) * (6 - len(utc)))))


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def target(name: str = "salesforce", kind: str = "salesforce", **budget) -> TargetConfig:
    return TargetConfig(name=name, kind=kind, request_budget=budget or None)


@pytest.fixture(autouse=True)
def var(tmp_path, monkeypatch):
    """A state folder of the test's own: the local store counts under $ERP2CRM_VAR/budget."""
    monkeypatch.setenv("ERP2CRM_VAR", str(tmp_path / "var"))
    return tmp_path / "var"


def redis_connection(monkeypatch, prefix: str, **fields) -> None:
    conn = {"conn_type": "redis", "host": REDIS_HOST, "port": REDIS_PORT, "extra": {"db": 0, "key_prefix": prefix},
            **fields}
    monkeypatch.setenv("AIRFLOW_CONN_ERP2CRM_REDIS", json.dumps(conn))


@pytest.fixture
def redis_prefix(monkeypatch):
    """The Airflow connection erp2crm_redis to the machine's Redis, with a key prefix of this test's own."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as e:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_HOST}:{REDIS_PORT} is required in CI and not reachable: {e}")
        pytest.skip(f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT}: {e}")
    prefix = f"erp2crm-test-{uuid.uuid4().hex[:12]}:budget"
    redis_connection(monkeypatch, prefix)
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["local", "redis"])
def store(request):
    if request.param == "redis":
        request.getfixturevalue("redis_prefix")
    return request.param


# -- the budget ----------------------------------------------------------------------------------------------------
def test_a_day_window_resets_at_the_utc_day_boundary(store):
    clock = Clock(at(2026, 1, 5, 23, 58, 30))
    budget = request_budget(target(requests=3, per="day", store=store), clock=clock)
    assert [budget.take() for _ in range(3)] == [2, 1, 0]
    with pytest.raises(QuotaExhausted) as err:
        budget.take()
    message = str(err.value)
    for part in ("target 'salesforce'", "request budget of 3 requests per day used up", "3 used in the UTC day "
                 "2026-01-05", "resets at 2026-01-06T00:00:00Z (in 1m 30s)", "a run from then on resumes"):
        assert part in message, message
    assert ("shared in Redis 127.0.0.1:6379/0" if store == "redis" else "counted on this machine in") in message
    assert budget.remaining() == 0

    clock.t = at(2026, 1, 5, 23, 59, 59)
    with pytest.raises(QuotaExhausted):
        budget.take()
    clock.t = at(2026, 1, 6)  # a new window: its count starts at 0
    assert budget.take() == 2 and budget.remaining() == 2


def test_an_hour_window_and_all_or_nothing_takes(store):
    clock = Clock(at(2026, 3, 1, 13, 10))
    budget = request_budget(target(requests=3, per="hour", store=store), clock=clock)
    assert budget.take(2) == 1
    with pytest.raises(QuotaExhausted, match=r"2 used in the UTC hour 2026-03-01 13:00–14:00, 2 asked for"):
        budget.take(2)  # does not fit: nothing is taken
    assert budget.take(1) == 0
    clock.t = at(2026, 3, 1, 14)
    assert budget.take(3) == 0


def test_windows_are_fixed_and_utc_aligned():
    w = window_at(at(2026, 1, 5, 17, 42, 7), "day")
    assert (w.start, w.end, w.label) == (at(2026, 1, 5), at(2026, 1, 6), "2026-01-05")
    w = window_at(at(2026, 1, 5, 17, 42, 7), "hour")
    assert (w.start, w.end, w.label) == (at(2026, 1, 5, 17), at(2026, 1, 5, 18), "2026-01-05T17")


def test_redis_key_is_namespaced_by_target_and_window_and_expires(monkeypatch, redis_prefix):
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    clock = Clock(at(2026, 1, 5, 12))
    request_budget(target(requests=5, per="day", store="redis"), clock=clock).take()
    request_budget(target("hubspot", "hubspot", requests=5, per="hour", store="redis"), clock=clock).take(2)
    assert client.get(f"{redis_prefix}:salesforce:2026-01-05") == b"1"
    assert client.get(f"{redis_prefix}:hubspot:2026-01-05T12") == b"2"
    assert 12 * 3600 < client.ttl(f"{redis_prefix}:salesforce:2026-01-05") <= 12 * 3600 + 86400

    # Without key_prefix in the connection's extra, keys are erp2crm:budget:<target>:<window start>.
    name = f"budget_test_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_CONN_ERP2CRM_REDIS", json.dumps({"conn_type": "redis", "host": REDIS_HOST,
                                                                 "port": REDIS_PORT}))
    try:
        request_budget(target(name, requests=5, per="day", store="redis"), clock=clock).take()
        assert client.get(f"{KEY_PREFIX}:{name}:2026-01-05") == b"1"
    finally:
        client.delete(f"{KEY_PREFIX}:{name}:2026-01-05")


def _take_many(store: str, requests: int, takes: int, barrier, results) -> None:
    """One of several processes: `takes` takes against the shared budget, counted as (granted, refused)."""
    budget = request_budget(target(requests=requests, per="day", store=store), clock=Clock(at(2026, 1, 5, 12)))
    barrier.wait()
    granted = refused = 0
    for _ in range(takes):
        try:
            budget.take()
            granted += 1
        except QuotaExhausted:
            refused += 1
    results.put((granted, refused))


def test_parallel_processes_share_the_budget_exactly(store):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_take_many, args=(store, 120, 50, barrier, results)) for _ in range(4)]
    for w in workers:
        w.start()
    counts = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert sum(g for g, _ in counts) == 120 and sum(r for _, r in counts) == 80
    budget = request_budget(target(requests=120, per="day", store=store), clock=Clock(at(2026, 1, 5, 12)))
    assert budget.remaining() == 0


def test_local_counts_live_under_erp2crm_var_and_an_unreadable_file_is_a_config_error(var):
    budget = request_budget(target(requests=5, per="day"), clock=Clock(at(2026, 1, 5, 12)))
    budget.take()
    assert json.loads((var / "budget" / "salesforce.json").read_text()) == {"window": "2026-01-05", "per": "day",
                                                                            "used": 1}
    (var / "budget" / "salesforce.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"salesforce.json is unreadable .*delete it"):
        budget.take()


def test_no_budget_configured_is_no_budget():
    assert request_budget(TargetConfig(name="salesforce", kind="salesforce")) is None


def test_redis_store_without_its_connection_is_a_config_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_ERP2CRM_REDIS", raising=False)
    with pytest.raises(ConfigError, match="connection 'erp2crm_redis' is not defined"):
        request_budget(target(requests=5, per="day", store="redis"))


def test_unreachable_redis_is_transient_and_rejected_credentials_a_config_error(monkeypatch, redis_prefix):
    redis_connection(monkeypatch, redis_prefix, port=1)  # nothing listens there
    budget = request_budget(target(requests=5, per="day", store="redis"))
    with pytest.raises(TransientError, match="Redis 127.0.0.1:1/0 .* unreachable") as err:
        budget.take()
    assert not isinstance(err.value, QuotaExhausted)  # retried by Airflow, not a used-up budget

    redis_connection(monkeypatch, redis_prefix, login="nobody", password="wrong")
    with pytest.raises(ConfigError, match="Redis rejected the credentials of connection 'erp2crm_redis'"):
        request_budget(target(requests=5, per="day", store="redis")).take()


def test_quota_exhausted_fails_the_task_without_retries_and_redis_down_is_retried(monkeypatch, redis_prefix):
    from airflow.sdk.exceptions import AirflowFailException

    from erp2crm.tasks import run

    budget = RequestBudget("salesforce", 1, "day", LocalCounter(os.environ["ERP2CRM_VAR"]))
    budget.take()
    with pytest.raises(AirflowFailException, match=r"\[quota used up, not retried\] target 'salesforce'"):
        run(budget.take)
    redis_connection(monkeypatch, redis_prefix, port=1)
    with pytest.raises(TransientError):
        run(request_budget(target(requests=5, per="day", store="redis")).take)


# -- HttpClient: every attempt counts ----------------------------------------------------------------------------
def test_retries_are_taken_from_the_budget():
    from connectors.hubspot import HubspotSink, hubspot_client

    company = {"erp2crm_customer_id": "C1", "name": "Acme"}
    with HubspotEmulator(token=HS_TOKEN) as crm:
        budget = request_budget(target("hubspot", "hubspot", requests=3, per="day"))
        client = hubspot_client(crm.url, HS_TOKEN, sleep=lambda s: None, budget=budget)
        sink = HubspotSink(client, "companies", "erp2crm_customer_id")
        crm.fail_next(1, 503)
        assert sink.upsert([company])[0].ok
        assert crm.requests_served == 2 == client.requests_sent and budget.remaining() == 1

        crm.fail_next(1, 503)  # the retry does not fit: it is never sent
        with pytest.raises(QuotaExhausted, match="3 used in the UTC day"):
            sink.upsert([company])
        assert crm.requests_served == 3 == client.requests_sent


# -- a push that runs out of budget --------------------------------------------------------------------------------
@pytest.fixture
def hub(tmp_path):
    store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    return store


def put_profiles(hub: HubStore, n: int) -> set[str]:
    ids = [f"C{i:03d}" for i in range(n)]
    hub.replace_rows("profiles", [{"customer_id": c, "profile": json.dumps({"customer_id": c, "name": f"Customer {c}"}),
                                   "push_ready": True} for c in ids])
    return set(ids)


@pytest.fixture
def salesforce(monkeypatch):
    with SalesforceEmulator(token=SF_TOKEN) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(
            {"conn_type": "http", "host": emulator.url, "password": SF_TOKEN}))
        yield emulator


@pytest.fixture
def clock(monkeypatch):
    """The clock of budgets built by open_sink."""
    fake = Clock(at(2026, 1, 5, 9))
    monkeypatch.setattr(budget_module, "now", fake)
    return fake


def sf_customers(crm: SalesforceEmulator) -> list[str]:
    return sorted(r["ERP2CRM_Customer_Id__c"] for r in crm.records("Account"))


def test_push_stops_after_the_budgeted_calls_and_a_raised_budget_finishes(hub, salesforce, clock):
    expected = put_profiles(hub, 450)  # 3 calls of 200
    with pytest.raises(QuotaExhausted, match="request budget of 2 requests per day used up"):
        push(hub, "r1", target(requests=2, per="day"))
    assert salesforce.stats["requests"] == 2 and len(sf_customers(salesforce)) == 400

    second = push(hub, "r2", target(requests=5, per="day"))  # same window, budget raised
    assert salesforce.stats["requests"] == 2 + second["api_calls"] <= 5
    assert second["rejected"] == 0 and second["created"] + second["updated"] == second["sent"]
    assert sf_customers(salesforce) == sorted(expected)  # exactly the expected records, no duplicates
    assert set(hub.read_table("push_state")["customer_id"]) == expected
    assert push(hub, "r3", target(requests=5, per="day"))["api_calls"] == 0


def test_push_through_a_redis_budget_stops_and_a_raised_budget_finishes(hub, monkeypatch, redis_prefix, clock):
    expected = put_profiles(hub, 250)  # 3 calls of 100
    with HubspotEmulator(token=HS_TOKEN) as crm:
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(
            {"conn_type": "http", "host": crm.url, "password": HS_TOKEN}))
        with pytest.raises(QuotaExhausted, match=r"budget of 1 requests per hour used up .*shared in Redis"):
            push(hub, "r1", target("hubspot", "hubspot", requests=1, per="hour", store="redis"))
        assert crm.requests_served == 1 and len(crm.records("companies")) == 100

        second = push(hub, "r2", target("hubspot", "hubspot", requests=4, per="hour", store="redis"))
        assert crm.requests_served == 1 + second["api_calls"] <= 4 and second["rejected"] == 0
        held = sorted(r["properties"]["erp2crm_customer_id"] for r in crm.records("companies"))
        assert held == sorted(expected)
        assert set(hub.read_table("push_state")["customer_id"]) == expected


def test_confirmed_writes_survive_a_stopped_push_and_the_next_window_sends_only_the_rest(hub, salesforce, clock):
    expected = put_profiles(hub, 450)
    config = target(requests=2, per="day")
    with pytest.raises(QuotaExhausted):
        push(hub, "r1", config)
    assert salesforce.stats["requests"] == 2
    assert len(hub.read_table("push_state")) == 400  # the two confirmed batches stay confirmed
    receipts = hub.read_table("push_receipts")
    assert receipts["result"].value_counts().to_dict() == {"created": 400, "unsent": 50}

    clock.t = at(2026, 1, 6, 9)  # the next day's run, same budget
    second = push(hub, "r2", config)
    assert (second["sent"], second["created"], second["unchanged"], second["api_calls"]) == (50, 50, 400, 1)
    assert sf_customers(salesforce) == sorted(expected) and salesforce.stats["requests"] == 3
