"""A real BottleCRM (django-crm 1.35.0 from PyPI) for the tests, on the machine's PostgreSQL.

BottleCRM needs Python >= 3.12, so it runs from its own virtualenv (.venv-bottlecrm, built from
bottlecrm-requirements.lock with pyenv's 3.12.1). Migrating a database takes about two minutes, so the migrated
database with its integration user, org and admin profile is kept as a PostgreSQL template named after a hash of
the lock and the setup code; each test session clones it (a second), adds the custom fields our mapping writes
and a personal access token made for that clone alone, serves it with gunicorn on a free port and drops it.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from servers import pg_template

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
VENV = ROOT / ".venv-bottlecrm"
MAPPING = ROOT / "mappings" / "bottlecrm.yaml"
LOGIN = "erp2crm-integration@example.com"

# Run once per template: the org and the admin profile the integration acts as (no password: it only ever
# uses personal access tokens).
SETUP = f"""
from common.models import Org, Profile, User
user = User.objects.create_user(email={LOGIN!r}, password=None)
org = Org.objects.create(name="erp2crm tests")
Profile.objects.create(user=user, org=org, role="ADMIN")
"""

# Run per clone: the custom fields (what an org admin creates once under Settings, like a Salesforce __c field)
# and a token scoped to what the sink does. Printed on the last line; only its hash is stored.
CLONE_SETUP = """
import json
from common.models import CustomFieldDefinition, PersonalAccessToken, Profile
profile = Profile.objects.get(user__email={login!r})
for model, key, field_type in json.loads({fields!r}):
    CustomFieldDefinition.objects.create(org=profile.org, target_model=model, key=key, label=key,
                                         field_type=field_type, is_filterable=True)
raw, _ = PersonalAccessToken.generate(profile, "erp2crm tests",
                                      scopes=["accounts:read", "accounts:write", "contacts:read", "contacts:write",
                                              "custom-fields:read"])
print(raw)
"""

# Profile fields whose BottleCRM custom field is a number or a checkbox; every other one is text.
NUMBERS = {"lifetime_revenue", "revenue_12m", "net_value", "clv", "order_count", "open_receivables",
           "overdue_amount", "churn_risk", "tickets_open", "avg_order_value", "satisfaction"}
CHECKBOXES = {"is_company", "churn_flag"}


class Unavailable(RuntimeError):
    """The machine cannot run the server (no PostgreSQL, no BottleCRM virtualenv)."""


@dataclass
class BottleCrmServer:
    url: str
    token: str  # a personal access token of the integration's admin profile, made for this clone alone
    database: str
    process: subprocess.Popen
    folder: Path  # scratch directory: gunicorn's CWD, where BottleCRM writes its logs

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        """A raw API call (tests use it to read records back)."""
        kwargs.setdefault("timeout", 30)
        return requests.request(method, f"{self.url}/api/{path.lstrip('/')}",
                                headers={"Authorization": f"Bearer {token or self.token}"}, **kwargs)


def custom_fields() -> list[tuple[str, str, str]]:
    """(model, custom field key, BottleCRM field type) for every `custom_fields.<key>` the outbound mapping writes:
    the Account's, and the Contact's of its contacts section."""
    mapping = yaml.safe_load(MAPPING.read_text())
    out = []
    for model, section in (("Account", mapping), ("Contact", mapping.get("contacts") or {})):
        if not section:
            continue
        rules = {k: v.get("from") if isinstance(v, dict) else v for k, v in section["fields"].items()}
        flags = [(section[k], None) for k in ("status_field", "merged_into_field") if section.get(k)]
        for crm_field, source in [(section["external_id_field"], None), *rules.items(), *flags]:
            if crm_field.startswith("custom_fields."):
                kind = "number" if source in NUMBERS else "checkbox" if source in CHECKBOXES else "text"
                out.append((model, crm_field.split(".", 1)[1], kind))
    return out


def _env(database: str) -> dict:
    # A fresh SECRET_KEY each time: it signs sessions and JWTs, which the tests never use (tokens are hashed).
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", "ENV_TYPE": "dev", "DEBUG": "False",
            "SECRET_KEY": secrets.token_urlsafe(48), "DBNAME": database, "DBUSER": "postgres", "DBPASSWORD": "",
            "DBHOST": "127.0.0.1", "DBPORT": "5432", "CELERY_BROKER_URL": "memory://",
            "CELERY_RESULT_BACKEND": "cache+memory://", "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}"}


def _run(args: list[str], database: str, folder: Path, what: str, timeout: int = 900) -> str:
    done = subprocess.run([str(VENV / "bin/django-admin"), *args], env=_env(database), cwd=folder,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def template_name() -> str:
    digest = hashlib.sha256((HERE / "bottlecrm-requirements.lock").read_bytes() + SETUP.encode())
    return f"erp2crm_bottlecrm_tpl_{digest.hexdigest()[:12]}"


def _initialise(database: str, folder: Path) -> None:
    """Migrate an empty database and set up the integration user, org and admin profile (what the template holds)."""
    _run(["migrate", "--no-input"], database, folder, "django-admin migrate")
    _run(["shell", "--no-imports", "-c", SETUP], database, folder, "BottleCRM setup")


def start() -> BottleCrmServer:
    if not (VENV / "bin/gunicorn").exists():
        raise Unavailable(f"{VENV} is missing: build it with pyenv's Python 3.12 from "
                          f"tests/servers/bottlecrm-requirements.lock (`make test` does)")
    if reason := pg_template.unreachable():
        raise Unavailable(reason)
    folder = Path(tempfile.mkdtemp(prefix="erp2crm-bottlecrm-"))
    database = pg_template.clone(template_name(), lambda scratch: _initialise(scratch, folder), "erp2crm_bottlecrm")
    port = pg_template.free_port()
    # Until gunicorn runs, a failure drops the clone here; from then on, stop() does.
    try:
        out = _run(["shell", "--no-imports", "-c", CLONE_SETUP.format(login=LOGIN, fields=json.dumps(custom_fields()))],
                   database, folder, "BottleCRM clone setup")
        token = out.strip().splitlines()[-1]
        with open(folder / "gunicorn.log", "wb") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen([str(VENV / "bin/gunicorn"), "crm.wsgi:application", "-b",
                                        f"127.0.0.1:{port}", "-w", "2", "--timeout", "60"], env=_env(database),
                                       cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    except BaseException:
        pg_template.drop(database)
        raise
    server = BottleCrmServer(f"http://127.0.0.1:{port}", token, database, process, folder)
    try:
        _wait_until_serving(server)
    except BaseException:
        stop(server, keep_logs=True)
        raise
    return server


def _wait_until_serving(server: BottleCrmServer, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if server.api("GET", "custom-fields/", timeout=15).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a worker still loading Django
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            log = server.folder / "gunicorn.log"
            raise RuntimeError(f"gunicorn did not start: see {log}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)


def stop(server: BottleCrmServer, keep_logs: bool = False) -> None:
    pg_template.stop_process_group(server.process)
    pg_template.drop(server.database)
    if not keep_logs:
        shutil.rmtree(server.folder, ignore_errors=True)
