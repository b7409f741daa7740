"""A full read of a large database source extracts its streams two at a time, in forked processes, into the same
landing partitions as one at a time, from SQLite (read through ADBC) and from PostgreSQL (each process on its own
connections); a stream that fails there fails the extract with its own error."""
from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest
from sqlalchemy import text

from connectors.registry import open_source
from connectors.sql import SqlSource
from demodata import generate
from erp2crm import local, pipeline
from erp2crm.canonical import ENTITIES
from erp2crm.config import load_config
from erp2crm.demo import connections
from erp2crm.errors import TransientError
from servers.database import admin_engine_or_skip
from test_source_contract import PG, _copy_demo_database

TOKEN = "parallel-extract-token-77c1"


@pytest.fixture(params=["sqlite", "postgresql"])
def odoo(request, airflow_db, tmp_path):
    generate(tmp_path / "erp", n_customers=40, seed=5)
    conns = connections(tmp_path, tmp_path / "erp", "http://127.0.0.1:9", TOKEN)
    database = None
    if request.param == "postgresql":
        admin = admin_engine_or_skip(PG, "PostgreSQL")
        database = f"erp2crm_parallel_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        _copy_demo_database(tmp_path / "erp" / "odoo.db", PG.rsplit("/", 1)[0] + f"/{database}")
        conns["odoo_default"] = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres",
                                 "schema": database}
    local.configure(tmp_path, conns)
    config = load_config()
    assert open_source(config.source("odoo")).engine.dialect.name == request.param
    yield pipeline.hub_store(config), config
    if database:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))


def test_streams_extracted_in_two_processes_land_as_one_at_a_time(odoo, tmp_path, monkeypatch):
    hub, config = odoo
    stage_stream = pipeline._stage_stream

    def recording(*args):  # runs in the process that extracts the stream
        (tmp_path / f"pid_{args[-2]}").write_text(str(os.getpid()))
        return stage_stream(*args)

    monkeypatch.setattr(pipeline, "_stage_stream", recording)
    monkeypatch.setattr(pipeline, "PARALLEL_EXTRACT_FROM", 1)
    in_parallel = pipeline.stage_source(hub, "parallel", config, "odoo", None)
    forked = {path.name[4:]: int(path.read_text()) for path in tmp_path.glob("pid_*")}
    monkeypatch.setattr(pipeline, "PARALLEL_EXTRACT_FROM", 10 ** 12)
    one_at_a_time = pipeline.stage_source(hub, "serial", config, "odoo", None)

    assert in_parallel == one_at_a_time and in_parallel["order"] > 0 and in_parallel["order_line"] > 0
    assert set(forked) == set(in_parallel) - {"rechecked"} and os.getpid() not in forked.values()
    for entity in ENTITIES:
        pd.testing.assert_frame_equal(hub.read_staged(entity, "parallel"), hub.read_staged(entity, "serial"))


def test_a_stream_failing_in_its_process_fails_the_extract_with_its_error(odoo, monkeypatch):
    hub, config = odoo
    extract = SqlSource.extract

    def failing(self, entity, window, chunk_size=50_000):
        if entity == "order":
            raise TransientError("source 'odoo': reading 'sale_order' failed: connection lost")
        return extract(self, entity, window, chunk_size)

    monkeypatch.setattr(SqlSource, "extract", failing)
    monkeypatch.setattr(pipeline, "PARALLEL_EXTRACT_FROM", 1)
    with pytest.raises(TransientError, match="reading 'sale_order' failed: connection lost"):
        pipeline.stage_source(hub, "failing", config, "odoo", None)
    assert hub.read_staged("order", "failing").empty
