"""An API connection's extra sets the HTTP client's timeout and retries (connectors.hooks.http_options): invalid
values, as a table of (extra, expected error), and a timeout that really cuts a slow server off."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.bottlecrm import BottlecrmHook
from connectors.hubspot import HubspotHook
from connectors.salesforce import SalesforceHook
from erp2crm.errors import ConfigError, TransientError

INVALID = [
    ({"timeout": 0}, "extra timeout=0 must be a number of seconds above 0"),
    ({"timeout": "soon"}, "extra timeout='soon' must be a number of seconds above 0"),
    ({"timeout": True}, "extra timeout=True must be a number of seconds above 0"),
    ({"max_retries": -1}, "extra max_retries=-1 must be a whole number, 0 or more"),
    ({"max_retries": 2.5}, "extra max_retries=2.5 must be a whole number, 0 or more"),
    ({"max_retries": None}, "extra max_retries=None must be a whole number, 0 or more"),
]
HOOKS = [("hubspot", HubspotHook, "pat-token"), ("salesforce", SalesforceHook, "00Dtoken"),
         ("bottlecrm", BottlecrmHook, "bcrm_pat_token")]


def _connect(monkeypatch, name: str, host: str, token: str, extra: dict) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}_TEST", json.dumps(
        {"conn_type": "http", "host": host, "password": token, "extra": extra}))


@pytest.mark.parametrize("extra,expected", INVALID, ids=[e for _, e in INVALID])
@pytest.mark.parametrize("name,hook,token", HOOKS, ids=[h[0] for h in HOOKS])
def test_invalid_http_options_name_the_connection_and_the_key(monkeypatch, name, hook, token, extra, expected):
    _connect(monkeypatch, name, "http://127.0.0.1:9", token, extra)
    with pytest.raises(ConfigError) as error:
        hook(f"{name}_test").get_client()
    assert str(error.value) == f"connection '{name}_test': {expected}"


@pytest.mark.parametrize("name,hook,token", HOOKS, ids=[h[0] for h in HOOKS])
def test_valid_http_options_reach_the_client(monkeypatch, name, hook, token):
    _connect(monkeypatch, name, "http://127.0.0.1:9", token, {"timeout": "2.5", "max_retries": 1, "scheme": "http"})
    client = hook(f"{name}_test").get_client()
    client = client[0] if isinstance(client, tuple) else client
    assert (client.timeout, client.max_retries) == (2.5, 1)


@pytest.fixture
def slow_server():
    """A server that answers every request after three seconds."""
    class Slow(BaseHTTPRequestHandler):
        def do_POST(self):
            time.sleep(3)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_connection_timeout_cuts_a_slow_crm_off_as_a_transient_error(monkeypatch, slow_server):
    _connect(monkeypatch, "hubspot", slow_server, "pat-token", {"timeout": 0.3, "max_retries": 0})
    client = HubspotHook("hubspot_test").get_client()
    # With the default 30-second timeout the server's answer would arrive, after three seconds, as a success.
    with pytest.raises(TransientError, match="ReadTimeout"):
        client.request("POST", "/crm/v3/objects/companies/batch/upsert", json={"inputs": []})
    assert client.requests_sent == 1  # max_retries 0: not retried
