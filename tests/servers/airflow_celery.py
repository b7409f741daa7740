"""The real deployment for the tests: Airflow 3 with CeleryExecutor, Redis as broker, two Celery workers, and
PostgreSQL as both the Airflow metadata database and the hub store.

`start()` makes, under a fresh temporary folder: the demo ERP databases (SQLite, `demodata.generate`), a running
Salesforce emulator, two fresh PostgreSQL databases (Airflow metadata, hub store; unique names) and a Redis key
prefix of its own; then runs `airflow db migrate` and starts `airflow api-server` (free port; the Celery workers
run their tasks through its Execution API), `airflow scheduler`, `airflow dag-processor` and two
`airflow celery worker`s (distinct Celery hostnames, concurrency 2 each), every one with the same environment and
in its own session (`setsid`). `stop()` sends SIGINT to each process group (SIGTERM orphans Airflow's children),
SIGKILL after a timeout, checks that no process of the deployment is left, drops both databases and the Redis keys.
`Unavailable` says why the machine cannot run it (no PostgreSQL, no Redis, no celery provider).
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from servers import pg_template

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
DAG_ID = "erp_crm_customer_sync"
WORKERS = ("worker1", "worker2")
CONCURRENCY = 2


class Unavailable(RuntimeError):
    """The machine cannot run the deployment (no PostgreSQL, no Redis, no celery provider)."""


def pg_url(database: str, driver: str = "postgresql+psycopg") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5,
                         autocommit=True) as conn:
        conn.execute(sql)


def check_available() -> None:
    """Raise Unavailable with the reason when PostgreSQL, Redis or the celery provider is missing."""
    for module in ("airflow.providers.celery", "celery", "redis"):
        if importlib.util.find_spec(module) is None:
            raise Unavailable(f"Python module {module} is not installed: pip install apache-airflow-providers-celery "
                              f"(pinned in requirements.lock)")
    try:
        _pg_admin("SELECT 1")
    except Exception as e:
        raise Unavailable(f"PostgreSQL on {PG_HOST}:{PG_PORT} is unreachable: {e}") from None
    try:
        import redis

        redis.Redis(REDIS_HOST, REDIS_PORT, socket_timeout=5, socket_connect_timeout=5).ping()
    except Exception as e:
        raise Unavailable(f"Redis on {REDIS_HOST}:{REDIS_PORT} is unreachable: {e}") from None


@dataclass
class Deployment:
    folder: Path  # the temporary folder: var/ (ERP2CRM_VAR, AIRFLOW_HOME under it), erp/, logs/
    erp: Path
    crm: object  # emulators.salesforce.SalesforceEmulator
    crm_token: str
    meta_db: str
    hub_db: str
    key_prefix: str  # every Redis key of this deployment starts with it
    queue: str
    api_url: str
    env: dict
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def var(self) -> Path:
        return self.folder / "var"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    @property
    def meta_url(self) -> str:
        return pg_url(self.meta_db)

    @property
    def hub_url(self) -> str:
        return pg_url(self.hub_db)

    def airflow(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        """One Airflow CLI command in the deployment's environment."""
        done = subprocess.run([*_airflow_cmd(), *args], env=self.env, cwd=self.folder, capture_output=True, check=False,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        return done

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        """Rows from the Airflow metadata database."""
        import psycopg

        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=self.meta_db, connect_timeout=10) as c:
            return c.execute(sql, params or {}).fetchall()

    def log_tail(self, name: str, chars: int = 6000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def all_logs(self, chars: int = 6000) -> str:
        return "\n".join(f"===== {name} (last {chars} chars) =====\n{self.log_tail(name, chars)}"
                         for name in ("migrate", *self.processes))

    def task_logs(self, run_id: str, chars: int = 3000) -> str:
        """The end of each task attempt's log of a run that logged an error (what failed and why)."""
        folder = self.var / "airflow" / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
        out = []
        for path in sorted(folder.rglob("*.log")) if folder.exists() else []:
            text = path.read_text(errors="replace")
            if '"level":"error"' in text:
                out.append(f"===== {path.relative_to(folder)} (last {chars} chars) =====\n{text[-chars:]}")
        return "\n".join(out)

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"deployment processes exited: {dead}\n{self.all_logs()}")


def _airflow_cmd() -> list[str]:
    script = Path(sys.executable).with_name("airflow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "airflow"]


def _environment(folder: Path, meta_db: str, connections: dict[str, dict], api_port: int, key_prefix: str,
                 queue: str, deployment_id: str) -> dict:
    """One environment for every process: the repository's airflow.cfg (as erp2crm.local sets it up), with the
    executor, databases, broker, API and connections overridden by environment variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ERP2CRM_"))}
    var = folder / "var"
    meta = pg_url(meta_db)
    env.update({
        "ERP2CRM_HOME": str(ROOT), "ERP2CRM_VAR": str(var),
        "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg"), "AIRFLOW_HOME": str(var / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
        # A key prefix of its own (keys, queues and pub/sub channels): other deployments on this Redis never
        # see this one's tasks or workers.
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": key_prefix,
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{meta}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(CONCURRENCY),
        # Results keep the worker's name (celery_taskmeta.worker): which worker ran which task instance.
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"result_extended": True}),
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        # Runs only when triggered: unpausing a @daily DAG would otherwise start a scheduled run as well.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "ERP2CRM_TEST_DEPLOYMENT": deployment_id,  # marks every process of this deployment (see stop())
    })
    for conn_id, spec in connections.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(spec)
    return env


def _spawn(dep: Deployment, name: str, args: list[str]) -> None:
    log = open(dep.logs / f"{name}.log", "ab")
    try:
        dep.processes[name] = subprocess.Popen([*_airflow_cmd(), *args], env=dep.env, cwd=dep.folder, stdout=log,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               start_new_session=True)  # setsid: a process group to signal
    finally:
        log.close()


def _wait(what: str, ready, dep: Deployment, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        dep.check_alive()
        try:
            result = ready()
        except Exception:  # not up yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}\n{dep.all_logs()}")
        time.sleep(interval)


_PING = """
import json, sys
from celery import Celery
app = Celery("erp2crm-probe", broker=sys.argv[1], broker_transport_options={"global_keyprefix": sys.argv[2]})
print(json.dumps(sorted(name for answer in app.control.ping(timeout=1.0) or [] for name in answer)))
"""


def workers_ready(dep: Deployment) -> set[str]:
    """The Celery workers of this deployment answering a ping (their Celery hostnames). Asked from a child
    process: a Celery app in the test process would leave kombu's after-fork hooks behind, and a later
    multiprocessing fork in the same process (parallel normalisation) would block in them on a Redis socket."""
    done = subprocess.run([sys.executable, "-c", _PING, dep.env["AIRFLOW__CELERY__BROKER_URL"], dep.key_prefix],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return set()
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def start(n_customers: int = 60, seed: int = 5, startup_timeout: float = 240) -> Deployment:
    """Everything up and ready: the DAG parsed into the metadata database, both workers answering."""
    check_available()
    from demodata import generate
    from emulators.salesforce import SalesforceEmulator
    from erp2crm.demo import connections

    started = time.monotonic()
    suffix = uuid.uuid4().hex[:10]
    folder = Path(tempfile.mkdtemp(prefix="erp2crm-celery-"))
    (folder / "logs").mkdir()
    (folder / "var" / "airflow").mkdir(parents=True)
    erp = folder / "erp"
    token = secrets.token_urlsafe(24)  # a fresh CRM secret: it lives only in this deployment's environment
    try:
        generate(erp, n_customers=n_customers, seed=seed)
        crm = SalesforceEmulator(state_file=folder / "crm.json", token=token).start()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    meta_db, hub_db = f"erp2crm_airflow_{suffix}", f"erp2crm_hub_{suffix}"
    conns = connections(folder / "var", erp, crm.url, token)
    conns["erp2crm_hub"] = {"conn_type": "postgres", "host": PG_HOST, "port": PG_PORT, "login": PG_USER,
                            "schema": hub_db}
    api_port = pg_template.free_port()
    key_prefix, queue = f"erp2crm-{suffix}:", f"erp2crm-{suffix}"
    env = _environment(folder, meta_db, conns, api_port, key_prefix, queue, suffix)
    dep = Deployment(folder=folder, erp=erp, crm=crm, crm_token=token, meta_db=meta_db, hub_db=hub_db,
                     key_prefix=key_prefix, queue=queue, api_url=f"http://127.0.0.1:{api_port}", env=env)
    try:
        _pg_admin(f'CREATE DATABASE "{meta_db}"')
        _pg_admin(f'CREATE DATABASE "{hub_db}"')
        t0 = time.monotonic()
        migrated = dep.airflow("db", "migrate", timeout=600)
        (dep.logs / "migrate.log").write_text(migrated.stdout + migrated.stderr)
        dep.timings["migrate_s"] = round(time.monotonic() - t0, 1)
        _spawn(dep, "api-server", ["api-server", "--port", str(api_port), "--host", "127.0.0.1", "--workers", "1"])
        _spawn(dep, "scheduler", ["scheduler"])
        _spawn(dep, "dag-processor", ["dag-processor"])
        for name in WORKERS:
            _spawn(dep, name, ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency",
                               str(CONCURRENCY), "--queues", queue, "--skip-serve-logs"])

        def remaining() -> float:
            return max(10.0, startup_timeout - (time.monotonic() - started))

        _wait("the api-server's health endpoint", lambda: requests.get(
            f"{dep.api_url}/api/v2/monitor/health", timeout=5).status_code == 200, dep, remaining())
        _wait(f"the dag-processor to parse {DAG_ID}", lambda: dep.query(
            "SELECT 1 FROM dag WHERE dag_id = %(d)s AND is_stale = false", {"d": DAG_ID}), dep, remaining())
        _wait("both Celery workers", lambda: len(workers_ready(dep)) == len(WORKERS), dep, remaining(), 1.0)
        _wait("the scheduler's heartbeat", lambda: requests.get(f"{dep.api_url}/api/v2/monitor/health", timeout=5)
              .json()["scheduler"]["status"] == "healthy", dep, remaining())
        dep.timings["startup_s"] = round(time.monotonic() - started, 1)
        return dep
    except BaseException:
        stop(dep)
        raise


def _descendants(pids: list[int]) -> list:
    import psutil

    found = []
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            found += [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return found


def _marked(deployment_id: str) -> list:
    """Processes whose environment carries this deployment's mark (orphans included)."""
    import psutil

    mark = f"ERP2CRM_TEST_DEPLOYMENT={deployment_id}".encode()
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and mark in Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0"):
                found.append(proc)
        except (OSError, psutil.Error):
            pass
    return found


def stop(dep: Deployment, timeout: float = 30) -> list[str]:
    """Stop every process (SIGINT to each process group, SIGKILL after `timeout`), then drop the databases, the
    Redis keys and the folder. Returns what had to be killed (empty when everything stopped on SIGINT)."""
    import psutil

    killed: list[str] = []
    running = {name: p for name, p in dep.processes.items() if p.poll() is None}
    family = _descendants([p.pid for p in running.values()])
    # Workers first, so that they stop taking tasks; then the scheduler and the rest.
    order = [n for n in (*WORKERS, "scheduler", "dag-processor", "api-server") if n in running]
    for name in order:
        try:
            os.killpg(running[name].pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for name in order:
        try:
            running[name].wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killed.append(name)
            try:
                os.killpg(running[name].pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            running[name].wait(10)
    # Children still alive (in the group or not), then anything else carrying the deployment's mark.
    _, alive = psutil.wait_procs([p for p in family if p.is_running()], timeout=min(10, timeout))
    for proc in [*alive, *_marked(dep.env.get("ERP2CRM_TEST_DEPLOYMENT", "-"))]:
        try:
            killed.append(f"{proc.pid}:{' '.join(proc.cmdline())[:80]}")
            proc.kill()
        except psutil.Error:
            pass
    try:
        dep.crm.stop()
    except Exception:
        pass
    for database in (dep.meta_db, dep.hub_db):
        try:
            _pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        except Exception:
            pass
    try:
        import redis

        client = redis.Redis(REDIS_HOST, REDIS_PORT, socket_timeout=5)
        keys = list(client.scan_iter(match=f"{dep.key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception:
        pass
    if not os.environ.get("ERP2CRM_KEEP_DEPLOYMENT"):
        shutil.rmtree(dep.folder, ignore_errors=True)
    return killed
