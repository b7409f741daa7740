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
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from servers import pg_template

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
VENV = ROOT / ".venv-tryton"
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
        return pg_template.url(self.database)

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


def _initialise(database: str, folder: Path) -> None:
    """Create Tryton's tables in an empty database and seed it (what the template holds)."""
    config = _config(folder, 0)
    password_file = folder / "admin-password"
    password_file.write_text(ADMIN_PASSWORD)
    env = {**os.environ, "TRYTONPASSFILE": str(password_file)}
    _run([str(VENV / "bin/trytond-admin"), "-c", str(config), "-d", database, "--all", "-u", *MODULES,
          "--activate-dependencies", "--email", "admin@example.com"], env, "trytond-admin")
    _run([str(VENV / "bin/python"), str(HERE / "tryton_seed.py"), str(config), database], env, "seeding")


def _age(database: str, days: int = 30) -> None:
    """Move every create/write date of the clone `days` back, so that the seeded data is history to the
    tests: a record they change is then the only one inside a short extraction window."""
    engine = create_engine(pg_template.url(database))
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
    engine = create_engine(pg_template.url(database))
    with engine.begin() as conn:
        conn.execute(text(
            'INSERT INTO res_user_application (key, "user", application, state, create_uid, create_date) '
            "SELECT :key, id, 'rest', 'validated', 0, now() AT TIME ZONE 'UTC' FROM res_user WHERE login = 'admin'"),
            {"key": key})
    engine.dispose()
    return key


def start() -> TrytonServer:
    if not (VENV / "bin/trytond").exists():
        raise Unavailable(f"{VENV} is missing: `make test` builds it from tests/servers/tryton-requirements.lock")
    if reason := pg_template.unreachable():
        raise Unavailable(reason)
    folder = Path(tempfile.mkdtemp(prefix="erp2crm-tryton-"))
    database = pg_template.clone(template_name(), lambda scratch: _initialise(scratch, folder), "erp2crm_tryton")
    _age(database)
    rest_key = _rest_key(database)
    port = pg_template.free_port()
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
    pg_template.stop_process_group(server.process)
    pg_template.drop(server.database)
