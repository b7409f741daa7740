"""A real Tryton 8.2 server for the tests, on the machine's PostgreSQL.

Tryton runs from its own virtualenv (.venv-tryton, built by `make test` from tryton-requirements.lock):
its dependencies are not ours. Creating and seeding a database takes two to three minutes, so the seeded
database is kept as a PostgreSQL template named after a hash of the lock and the seed script; each test
session clones it (a second), serves the clone on a free port and drops it afterwards.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
VENV = ROOT / ".venv-tryton"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# The admin of a throwaway local test database, created from scratch by these tests: not a secret.
ADMIN_PASSWORD = "erp2crm-tryton-test-admin"
MODULES = ["sale", "account_invoice", "sale_complaint"]


class Unavailable(RuntimeError):
    """The machine cannot run the server (no PostgreSQL, no Tryton virtualenv)."""


@dataclass
class TrytonServer:
    url: str
    database: str
    login: str
    password: str
    rest_key: str  # a REST API key of the admin user, made for this database alone
    process: subprocess.Popen

    @property
    def sql_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.database}"

    def rpc(self, method: str, params: list):
        """A raw JSON-RPC call as admin (tests use it to change records in the ERP)."""
        login = requests.post(f"{self.url}/{self.database}/rpc/", timeout=30, json={
            "id": 0, "method": "common.db.login", "params": [self.login, {"password": self.password}, "en"]}).json()
        import base64
        user_id, session = login["result"][:2]
        token = base64.b64encode(f"{self.login}:{user_id}:{session}".encode()).decode()
        body = requests.post(f"{self.url}/{self.database}/rpc/", timeout=30, json={"id": 1, "method": method,
                             "params": params}, headers={"Authorization": f"Session {token}"}).json()
        if body.get("error"):
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]


def _admin_engine():
    return create_engine(PG, isolation_level="AUTOCOMMIT")


def _exists(conn, name: str) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar())


def _config(folder: Path, port: int) -> Path:
    path = folder / "trytond.conf"
    path.write_text(f"[web]\nlisten = 127.0.0.1:{port}\n[database]\nuri = postgresql://postgres@127.0.0.1:5432/\n"
                    f"[session]\nauthentications = password\n")
    return path


def _run(args: list[str], env: dict, what: str, timeout: int = 900) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def template_name() -> str:
    digest = hashlib.sha256()
    for name in ("tryton-requirements.lock", "tryton_seed.py"):
        digest.update((HERE / name).read_bytes())
    return f"erp2crm_tryton_tpl_{digest.hexdigest()[:12]}"


def _build_template(name: str, folder: Path) -> None:
    """Create, initialise and seed a database, then publish it under `name` by renaming it (atomic)."""
    building = f"{name}_building_{uuid.uuid4().hex[:6]}"
    config = _config(folder, 0)
    password_file = folder / "admin-password"
    password_file.write_text(ADMIN_PASSWORD)
    env = {**os.environ, "TRYTONPASSFILE": str(password_file)}
    with _admin_engine().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{building}"'))
    try:
        _run([str(VENV / "bin/trytond-admin"), "-c", str(config), "-d", building, "--all", "-u", *MODULES,
              "--activate-dependencies", "--email", "admin@example.com"], env, "trytond-admin")
        _run([str(VENV / "bin/python"), str(HERE / "tryton_seed.py"), str(config), building], env, "seeding")
        with _admin_engine().connect() as conn:
            if not _exists(conn, name):
                conn.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
    finally:
        with _admin_engine().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))


def _age(database: str, days: int = 30) -> None:
    """Move every create/write date of the clone `days` back, so that the seeded data is history to the
    tests: a record they change is then the only one inside a short extraction window."""
    engine = create_engine(PG.rsplit("/", 1)[0] + f"/{database}")
    with engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name IN ('create_date', 'write_date') AND data_type LIKE 'timestamp%' "
            "GROUP BY table_name HAVING count(*) = 2")).scalars().all()
        for table in tables:
            conn.execute(text(f'UPDATE "{table}" SET create_date = create_date - make_interval(days => {days}), '
                              f'write_date = write_date - make_interval(days => {days})'))
    engine.dispose()


def _rest_key(database: str) -> str:
    """A validated REST application key for the admin user (what Tryton's user preferences would create)."""
    key = secrets.token_hex(32)
    engine = create_engine(PG.rsplit("/", 1)[0] + f"/{database}")
    with engine.begin() as conn:
        conn.execute(text(
            'INSERT INTO res_user_application (key, "user", application, state, create_uid, create_date) '
            "SELECT :key, id, 'rest', 'validated', 0, now() AT TIME ZONE 'UTC' FROM res_user WHERE login = 'admin'"),
            {"key": key})
    engine.dispose()
    return key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start() -> TrytonServer:
    if not (VENV / "bin/trytond").exists():
        raise Unavailable(f"{VENV} is missing: `make test` builds it from tests/servers/tryton-requirements.lock")
    try:
        with _admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:
        raise Unavailable(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({type(e).__name__}); see systems.md "
                          f"for how to start it") from None
    folder = Path(tempfile.mkdtemp(prefix="erp2crm-tryton-"))
    template = template_name()
    with _admin_engine().connect() as conn:
        exists = _exists(conn, template)
    if not exists:
        _build_template(template, folder)
    database = f"erp2crm_tryton_{uuid.uuid4().hex[:8]}"
    with _admin_engine().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}" TEMPLATE "{template}"'))
    _age(database)
    rest_key = _rest_key(database)
    port = _free_port()
    config = _config(folder, port)
    log = open(folder / "trytond.log", "wb")
    process = subprocess.Popen([str(VENV / "bin/trytond"), "-c", str(config), "-d", database], stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    server = TrytonServer(f"http://127.0.0.1:{port}", database, "admin", ADMIN_PASSWORD, rest_key, process)
    deadline = time.monotonic() + 90
    while True:
        try:
            answer = requests.post(f"{server.url}/{database}/rpc/", timeout=5, json={
                "id": 0, "method": "common.db.login", "params": ["admin", {"password": ADMIN_PASSWORD}, "en"]})
            if answer.ok and answer.json().get("result"):
                return server
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(server)
            raise RuntimeError(f"trytond did not start: see {folder / 'trytond.log'}:\n"
                               f"{(folder / 'trytond.log').read_text()[-3000:]}")
        time.sleep(0.5)


def stop(server: TrytonServer) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
    with _admin_engine().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{server.database}" WITH (FORCE)'))
