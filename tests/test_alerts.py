"""A task that fails for good sends one clear alert: a log line, and a JSON POST to the `erp2crm_alerts`
webhook connection or an e-mail through it (type smtp) when it exists, without the secrets of any connection."""
from __future__ import annotations

import json
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from erp2crm import local
from erp2crm.paths import ROOT

WEBHOOK_TOKEN = "alert-webhook-token-5be0"


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append({"auth": self.headers.get("Authorization"), "body": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/erp2crm", _Receiver.received
    server.shutdown()


@pytest.fixture
def broken_source(airflow_db, tmp_path, monkeypatch):
    """A sync whose only source points at a connection nobody created: its extract task fails with a config
    error, at once (config errors are not retried)."""
    config = yaml.safe_load((ROOT / "config" / "erp2crm.yaml").read_text())
    config["sources"] = [{"name": "odoo", "conn_id": "odoo_nowhere"}]
    (tmp_path / "erp2crm.yaml").write_text(yaml.safe_dump(config))
    local.configure(tmp_path, {"erp2crm_hub": {"conn_type": "sqlite", "host": str(tmp_path / "hub.db")}})
    monkeypatch.setenv("ERP2CRM_CONFIG", str(tmp_path / "erp2crm.yaml"))


def test_a_failed_task_posts_one_alert_to_the_webhook(broken_source, webhook, monkeypatch):
    url, received = webhook
    monkeypatch.setenv("AIRFLOW_CONN_ERP2CRM_ALERTS", json.dumps({"conn_type": "http", "host": url,
                                                                  "password": WEBHOOK_TOKEN}))
    run = local.run_dag("erp_crm_customer_sync", {"full_refresh": True})
    assert str(run.state) == "failed"
    assert len(received) == 1  # the extract task; the stages after it never ran
    alert = received[0]
    assert alert["auth"] == f"Bearer {WEBHOOK_TOKEN}"
    body = alert["body"]
    assert body["dag_id"] == "erp_crm_customer_sync" and body["task_id"] == "extract"
    assert body["error_type"] == "AirflowFailException"
    assert "[config error, not retried]" in body["message"] and "'odoo_nowhere' is not defined" in body["message"]
    assert WEBHOOK_TOKEN not in json.dumps(body)


def test_without_a_webhook_the_alert_is_a_log_line(broken_source, caplog):
    os.environ.pop("AIRFLOW_CONN_ERP2CRM_ALERTS", None)
    with caplog.at_level("ERROR", logger="erp2crm.alerts"):
        run = local.run_dag("erp_crm_customer_sync", {"full_refresh": True})
    assert str(run.state) == "failed"
    lines = [r.getMessage() for r in caplog.records if r.name == "erp2crm.alerts"]
    assert any("task extract of erp_crm_customer_sync" in line and "odoo_nowhere" in line for line in lines), lines


class _SmtpReceiver(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""
    received: list = []

    def handle(self):
        self.wfile.write(b"220 test SMTP\r\n")
        envelope = {"to": []}
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ")[0].upper()
            if verb == "DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    data += self.rfile.readline()
                envelope["data"] = data[:-5].decode()
                _SmtpReceiver.received.append(dict(envelope))
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                if verb == "RCPT":
                    envelope["to"].append(command.split(":", 1)[1].strip("<> "))
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def mail_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _SmtpReceiver.received = []
    yield server.server_address[1], _SmtpReceiver.received
    server.shutdown()
    server.server_close()


def test_a_failed_task_mails_one_alert_through_an_smtp_connection(broken_source, mail_server, monkeypatch):
    port, received = mail_server
    monkeypatch.setenv("AIRFLOW_CONN_ERP2CRM_ALERTS", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"to": ["data-team@example.com", "oncall@example.com"], "from": "airflow@example.com"}}))
    run = local.run_dag("erp_crm_customer_sync", {"full_refresh": True})
    assert str(run.state) == "failed"
    assert len(received) == 1
    mail = received[0]
    assert mail["to"] == ["data-team@example.com", "oncall@example.com"]
    assert "Subject: [erp2crm] extract of erp_crm_customer_sync failed" in mail["data"]
    assert "From: airflow@example.com" in mail["data"]
    assert "'odoo_nowhere' is not defined" in mail["data"] and "[config error, not retried]" in mail["data"]
