"""The alert a failed task sends: one clear line in the log and, when the Airflow connection `erp2crm_alerts`
exists, either a JSON POST to its URL (type http: a chat or incident webhook; its password, if any, goes as a
bearer token) or an e-mail (type smtp: host and port of the mail server, login and password if it asks for them,
extra {"to": [addresses], "from": address, "starttls": true, "ssl": false}).

Called by Airflow as the tasks' on_failure_callback, after the last retry. It never raises: an alert that
cannot be delivered is logged, and the task's own failure stands. The error text is ours (classified errors
name connections and files, never their secrets)."""
from __future__ import annotations

import logging

import requests

log = logging.getLogger("erp2crm.alerts")
CONN_ID = "erp2crm_alerts"


def alert_text(context) -> dict:
    ti = context["ti"]
    error = context.get("exception")
    text = str(error) if error is not None else "no exception recorded"
    return {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": getattr(ti, "map_index", -1),
            "try_number": ti.try_number, "error_type": type(error).__name__ if error is not None else None,
            "message": f"erp2crm: task {ti.task_id} of {ti.dag_id} ({ti.run_id}) failed: {text}"}


def task_failed(context) -> None:
    alert = alert_text(context)
    log.error(alert["message"])
    from connectors.hooks import get_connection
    from erp2crm.errors import ConfigError

    try:
        conn = get_connection(CONN_ID)
    except ConfigError:
        return  # no webhook configured: the log line is the alert
    if (conn.conn_type or "").lower() in ("smtp", "email"):
        _mail(conn, alert)
        return
    url = conn.host if "://" in (conn.host or "") else f"https://{conn.host}{f':{conn.port}' if conn.port else ''}"
    headers = {"Authorization": f"Bearer {conn.password}"} if conn.password else {}
    try:
        requests.post(url, json=alert, headers=headers, timeout=10).raise_for_status()
    except requests.RequestException as e:
        log.error("erp2crm: the alert could not be delivered to connection %s: %s", CONN_ID, type(e).__name__)


def _mail(conn, alert: dict) -> None:
    import json
    import smtplib
    from email.message import EmailMessage

    extra = conn.extra_dejson or {}
    to = extra.get("to")
    to = [to] if isinstance(to, str) else list(to or [])
    if not conn.host or not to:
        log.error("erp2crm: the alert connection %s (smtp) needs host and extra \"to\"; not sent", CONN_ID)
        return
    mail = EmailMessage()
    mail["Subject"] = f"[erp2crm] {alert['task_id']} of {alert['dag_id']} failed"
    mail["From"] = extra.get("from") or f"erp2crm@{conn.host}"
    mail["To"] = ", ".join(to)
    mail.set_content(alert["message"] + "\n\n" + json.dumps(alert, indent=2, default=str))
    smtp = smtplib.SMTP_SSL if extra.get("ssl") else smtplib.SMTP
    try:
        with smtp(conn.host, conn.port or (465 if extra.get("ssl") else 25), timeout=10) as server:
            if extra.get("starttls"):
                server.starttls()
            if conn.login:
                server.login(conn.login, conn.password or "")
            server.send_message(mail)
    except (OSError, smtplib.SMTPException) as e:
        log.error("erp2crm: the alert could not be delivered to connection %s: %s", CONN_ID, type(e).__name__)
