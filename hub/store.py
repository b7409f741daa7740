"""HubStore: the one place that reads and writes the hub database (SQLite by default, PostgreSQL by URL)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
from sqlalchemy import (and_, bindparam, create_engine, delete, event, false, func, insert, select, true,
                        update)
from sqlalchemy.engine import URL, Engine, make_url

from erp2crm.canonical import ENTITIES, PARSE_ERRORS, STRING
from hub import bulk, migrations, schema
from hub.frames import coerce, for_sql
from hub.landing import FileLanding


def _keys(rows: pd.DataFrame, key_columns: tuple[str, ...]) -> set[tuple]:
    """(source_system, record_id) of each row, as the quarantine table stores them."""
    if rows.empty:
        return set()
    ids = _id_text(rows[key_columns[-1]])
    systems = rows["source_system"].astype(object) if "source_system" in key_columns else [None] * len(rows)
    return set(zip(systems, ids))


def _id_text(ids: pd.Series) -> pd.Series:
    """Record ids as the quarantine table stores them: text, None for missing (text columns without a loop)."""
    if pd.api.types.infer_dtype(ids, skipna=True) in ("string", "empty"):
        return ids.astype(object).where(ids.notna(), None)
    return ids.astype(object).map(lambda v: None if pd.isna(v) else str(v))


def _json_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _with_ids(rows: pd.DataFrame, column: str, ids: set) -> pd.DataFrame:
    """The rows whose `column`, as text, is one of `ids`: a check of 3M orders against a few held entries needs
    the keys of those few rows, not a set of 3M tuples."""
    if rows.empty or not ids:
        return rows.iloc[:0]
    return rows[_id_text(rows[column]).isin(ids).to_numpy(dtype=bool)]


def _landing_frames(chunks: Iterable[pd.DataFrame], fields: dict[str, str]) -> Iterator[pd.DataFrame]:
    """Each non-empty chunk coerced to the canonical kinds, with its parse errors (None where there are none)."""
    for chunk in chunks:
        if chunk.empty:
            continue
        frame = coerce(chunk, fields)
        errors = chunk[PARSE_ERRORS] if PARSE_ERRORS in chunk else pd.Series(None, index=chunk.index)
        frame[PARSE_ERRORS] = errors.astype(object).where(errors.notna(), None).to_numpy()
        yield frame


def _sqlite_page_cache(dbapi_connection, _record) -> None:
    """SQLite's page cache, 2 MiB by default, up to 64 MiB: upserting millions of rows into a table with two indexes
    thrashes a small cache (1M orders: 14.5 s → 8.7 s; 256 MiB gained 1.3 s more but held 200 MiB more per
    process). The cache grows only as pages are read."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size = -{bulk.SQLITE_CACHE_KIB}")
    cursor.close()


def _naive(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC").dt.tz_localize(None)
    return column


def _same(new: pd.Series, old: pd.Series) -> np.ndarray:
    """Per row, whether a value about to be written equals the one read back from the hub: nulls alike whether
    None, NaN or NaT, timestamps compared naive (UTC)."""
    new, old = _naive(new), _naive(old)
    equal = np.asarray(new.astype(object).to_numpy() == old.astype(object).to_numpy(), dtype=bool)
    return equal | (new.isna().to_numpy() & old.isna().to_numpy())


def _row_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows (dicts) as a frame for hub.bulk's writes, each value the object it is: pandas would otherwise copy text
    into its Arrow-backed str, and the writes turn it back into Python strings (249 MB of profile JSON at
    medium, twice)."""
    return pd.DataFrame(rows, dtype=object)


def utcnow() -> datetime:
    """Naive UTC now, the form timestamps take in SQL."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class HubStore:
    def __init__(self, url: str | URL, landing_dir: str | Path | None = None):
        """`landing_dir`: keep the landing partitions there as Parquet files (`hub.landing`); None: in the
        hub database's stg_ tables."""
        url = make_url(url)
        # SQLite allows one writer: wait for a lock instead of failing when mapped tasks write at once.
        connect_args = {"timeout": 60} if url.drivername.startswith("sqlite") else {}
        self.engine: Engine = create_engine(url, connect_args=connect_args)
        if url.drivername.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_page_cache)
        self.landing = FileLanding(landing_dir) if landing_dir is not None else None
        self._sqlite_file = bulk.sqlite_file(url)  # its entity upserts go through ADBC (bulk.upsert_sqlite_file)

    def migrate(self) -> list[int]:
        return migrations.migrate(self.engine)

    # --- canonical entities -------------------------------------------------------------------------
    def write_staged(self, entity: str, run_id: str, source_system: str, chunks: Iterable[pd.DataFrame]) -> int:
        """Replace the (run_id, source_system) landing partition with `chunks`, all in one transaction, so
        that a failure mid-way leaves the previous partition untouched and a retry never duplicates."""
        frames = _landing_frames(chunks, ENTITIES[entity].fields)
        if self.landing is not None:
            return self.landing.write(entity, run_id, source_system, frames)
        table, rows = schema.STAGING_TABLES[entity], 0
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.run_id == run_id, table.c.source_system == source_system))
            for frame in frames:
                frame.insert(0, "run_id", run_id)
                bulk.insert_frame(conn, table, frame)
                rows += len(frame)
        return rows

    def read_staged(self, entity: str, run_id: str) -> pd.DataFrame:
        """The run's landing rows of `entity`, with their parse errors."""
        if self.landing is not None:
            return self.landing.read(entity, run_id)
        table = schema.STAGING_TABLES[entity]
        with self.engine.connect() as conn:
            return bulk.read_frame(conn, select(table).where(table.c.run_id == run_id), ENTITIES[entity].fields,
                                   keep=(PARSE_ERRORS,))

    def prune_landing(self, keep_runs: int) -> list[str]:
        """Remove the landing partitions of every run but the `keep_runs` last started (the current one among
        them): a partition is read by its own run's staging gate, and kept a while for retries and inspection."""
        keep = {r["run_id"] for r in self.last_runs(keep_runs)}
        if self.landing is not None:
            return self.landing.drop_runs(keep)
        gone: set[str] = set()
        with self.engine.begin() as conn:
            for table in schema.STAGING_TABLES.values():
                stale = table.c.run_id.not_in(keep) if keep else true()
                runs = conn.execute(select(table.c.run_id).where(stale).distinct()).scalars().all()
                if runs:
                    conn.execute(delete(table).where(table.c.run_id.in_(runs)))
                    gone.update(runs)
        return sorted(gone)

    def read_entity(self, entity: str, columns: list[str] | None = None, where: tuple[str, pd.DataFrame] | None = None,
                    slice_ids: int = 100_000) -> pd.DataFrame:
        """The current rows of `entity`; only `columns` (in that order) when given. With `where` = (column, keys),
        only the rows whose (source_system, column) is a row of `keys` (columns source_system and `column`):
        one query per source system and `slice_ids` ids, so that an index on (source_system, column) serves it."""
        table, fields = schema.ENTITY_TABLES[entity], ENTITIES[entity].fields
        if columns is not None:
            fields = {name: fields[name] for name in columns}
        query = select(*(table.c[name] for name in fields))
        with self.engine.connect() as conn:
            if where is None:
                return bulk.read_frame(conn, query, fields)
            column, keys = where
            keys = keys[["source_system", column]].dropna().drop_duplicates()
            parts = [bulk.read_frame(conn, query.where(table.c.source_system == system,
                                                       table.c[column].in_(ids[start:start + slice_ids])), fields)
                     for system, ids in keys.groupby("source_system", sort=True)[column].agg(list).items()
                     for start in range(0, len(ids), slice_ids)]
            if not parts:
                return bulk.read_frame(conn, query.where(false()), fields)
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def clear_changed_owners(self, run_ids: set[str]) -> None:
        """Forget the changed owners of these runs: an enrich has recomputed their profiles."""
        table = schema.changed_owners
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.run_id.in_(sorted(run_ids))))

    def record_changed_owners(self, run_id: str, entity: str, owners: pd.DataFrame) -> int:
        """Add (source_system, owner_id) rows to this run's changed owners of `entity` ("*": every profile is to
        be recomputed), kept until an enrich has recomputed their profiles (erp2crm.refresh). An upsert on the
        whole row: a retried gate adds to what its first try recorded."""
        table = schema.changed_owners
        owners = owners[["source_system", "owner_id"]].astype(object).dropna().drop_duplicates()
        with self.engine.begin() as conn:
            bulk.upsert_frame(conn, table, owners.assign(run_id=run_id, entity=entity),
                              tuple(c.name for c in table.primary_key))
        return len(owners)

    def upsert_entity(self, entity: str, df: pd.DataFrame, run_id: str) -> None:
        """Make `df` the current version of its rows (keyed by source_system, source_id); of two rows with the same
        key, the last one."""
        if df.empty:
            return
        keys = ("source_system", "source_id")
        frame = coerce(df, ENTITIES[entity].fields)
        frame["run_id"] = run_id
        if self._sqlite_file:  # INSERT OR REPLACE in the frame's order keeps the last row of a key
            bulk.upsert_sqlite_file(self._sqlite_file, schema.ENTITY_TABLES[entity], frame, keys)
            return
        repeated = frame.duplicated(list(keys), keep="last")  # ON CONFLICT cannot update a row twice
        if repeated.any():  # filtering copies every column: only when there is something to drop
            frame = frame[~repeated]
        with self.engine.begin() as conn:
            bulk.upsert_frame(conn, schema.ENTITY_TABLES[entity], frame, keys)

    def delete_entity_rows(self, entity: str, keys: pd.DataFrame) -> None:
        if keys.empty:
            return
        with self.engine.begin() as conn:
            bulk.delete_keys(conn, schema.ENTITY_TABLES[entity], ("source_system", "source_id"),
                              list(zip(keys["source_system"], keys["source_id"])))

    def upsert_rows(self, name: str, rows: list[dict], key_columns: tuple[str, ...], remove: list[tuple] = ()) -> None:
        """Replace the rows with the same key as `rows` (and add the new ones), and delete those keyed `remove`,
        atomically. Each row holds every column; they are written in bulk (hub.bulk), not one parameter set each."""
        if not rows and not remove:
            return
        table = schema.metadata.tables[name]
        with self.engine.begin() as conn:
            bulk.delete_keys(conn, table, key_columns, list(remove))
            if rows:
                bulk.upsert_frame(conn, table, _row_frame(rows), key_columns)

    # --- quarantine -----------------------------------------------------------------------------------
    def add_quarantine(self, run_id: str, stage: str, entity: str, rows: pd.DataFrame, key_columns: tuple[str, ...]) -> int:
        """Hold `rows` (which carry reason_code, expectation and reason columns) with their full record."""
        if rows.empty:
            return 0
        now = utcnow()
        record_cols = [c for c in rows.columns if c not in ("reason_code", "expectation", "reason")]
        records = []
        for row in rows.to_dict("records"):
            record = {k: row[k] for k in record_cols}
            records.append({
                "run_id": run_id, "stage": stage, "entity": entity,
                "source_system": row.get("source_system") if "source_system" in key_columns else None,
                "record_id": str(row.get(key_columns[-1])) if row.get(key_columns[-1]) is not None else None,
                "reason_code": row["reason_code"], "expectation": row["expectation"], "reason": row["reason"],
                "record": json.dumps(record, default=str, ensure_ascii=False), "quarantined_at": now})
        with self.engine.begin() as conn:
            conn.execute(insert(schema.quarantine), records)
        return len(records)

    def settle_quarantine(self, run_id: str, stage: str, entity: str, failed: pd.DataFrame,
                          key_columns: tuple[str, ...], checked: pd.DataFrame, whole: bool = False,
                          present: set | None = None) -> dict:
        """Record one check of `entity` at `stage`: `checked` holds every row checked, `failed` those that failed
        (with reason columns). A held entry whose record failed again is superseded by the new entry, one whose
        record passed is released; with `whole` (the check saw every current record), one whose record was not
        checked at all is gone; with `present` (the ids of every current record), one whose record is not there is
        gone. Returns the counts of each."""
        q = schema.quarantine
        held = self.held_quarantine(entity, stage)
        held_ids = set(held["record_id"].dropna())
        failed_keys = _keys(failed, key_columns)
        checked_keys = _keys(_with_ids(checked, key_columns[-1], held_ids), key_columns)
        outcome: dict[str, list[int]] = {"superseded": [], "passed": [], "gone": []}
        for entry_id, system, record_id in zip(held["id"], held["source_system"], held["record_id"]):
            key = (system if isinstance(system, str) else None, record_id)
            if record_id is None or (isinstance(record_id, float) and pd.isna(record_id)):
                continue  # a row without a key cannot be matched again: it stays held (a later read adds a new entry)
            if key in failed_keys:
                outcome["superseded"].append(int(entry_id))
            elif key in checked_keys:
                outcome["passed"].append(int(entry_id))
            elif whole or (present is not None and record_id not in present):
                outcome["gone"].append(int(entry_id))
        now = utcnow()
        with self.engine.begin() as conn:
            for resolution, ids in outcome.items():
                for start in range(0, len(ids), 500):
                    conn.execute(update(q).where(q.c.id.in_(ids[start:start + 500])).values(
                        released_at=now, released_run_id=run_id, resolution=resolution))
        held_now = self.add_quarantine(run_id, stage, entity, failed, key_columns)
        return {"held": held_now, "released": len(outcome["passed"]), "superseded": len(outcome["superseded"]),
                "gone": len(outcome["gone"])}

    def held_quarantine(self, entity: str | None = None, stage: str | None = None) -> pd.DataFrame:
        q = schema.quarantine
        query = select(q).where(q.c.released_at.is_(None))
        if entity:
            query = query.where(q.c.entity == entity)
        if stage:
            query = query.where(q.c.stage == stage)
        with self.engine.connect() as conn:
            return bulk.read_rows(conn, query.order_by(q.c.id))

    # --- identity resolution state ----------------------------------------------------------------------
    def match_pairs(self) -> tuple[pd.DataFrame | None, str | None]:
        """The scored pairs of the last run and the model fingerprint they were scored with (None: none)."""
        frame = self.read_table("match_pairs")
        if frame.empty or frame["model"].nunique() != 1:
            return None, None
        pairs = frame.rename(columns={"left_id": "left", "right_id": "right"})
        return pairs[["left", "right", "match_probability", "match_weight", "fields"]], frame["model"].iat[0]

    def save_matching_state(self, pairs: pd.DataFrame | None, model: str | None, reviews: pd.DataFrame | None,
                            run_id: str, now: datetime) -> None:
        """Replace the scored pairs; refresh the pending review queue, keeping every decision ever made."""
        if pairs is None or model is None:
            pairs = pd.DataFrame(columns=["left", "right", "match_probability", "match_weight", "fields"])
        self.replace_frame("match_pairs", pd.DataFrame({
            "left_id": pairs["left"], "right_id": pairs["right"],
            "match_probability": pairs["match_probability"].astype(float),
            "match_weight": pairs["match_weight"].astype(float), "fields": pairs["fields"].map(_json_text),
            "model": model, "run_id": run_id}))
        r = schema.match_reviews
        with self.engine.begin() as conn:
            decided = {tuple(k) for k in conn.execute(select(r.c.left_id, r.c.right_id).where(r.c.status != "pending"))}
            conn.execute(delete(r).where(r.c.status == "pending"))
            pending = [] if reviews is None else [
                {"left_id": p.left, "right_id": p.right, "match_probability": float(p.match_probability),
                 "fields": _json_text(p.fields), "status": "pending", "queued_at": now,
                 "run_id": run_id} for p in reviews.itertuples(index=False) if (p.left, p.right) not in decided]
            if pending:
                conn.execute(insert(r), pending)

    def normal_forms(self, normaliser: str) -> pd.DataFrame | None:
        """The customer records' normalised identity fields the last reconcile saved with `normaliser` (rows of
        another normaliser are stale: normalised again). None when there are none."""
        table = schema.record_normal_forms
        fields = {c.name: STRING for c in table.columns if c.name != "normaliser"}
        with self.engine.connect() as conn:
            frame = bulk.read_frame(conn, select(table).where(table.c.normaliser == normaliser), fields)
        return None if frame.empty else frame

    def save_normal_forms(self, fresh: pd.DataFrame, gone: list[str], normaliser: str) -> None:
        """Store the records normalised in this run; forget the records that are gone."""
        table = schema.record_normal_forms
        frame = fresh[[c.name for c in table.columns if c.name != "normaliser"]].assign(normaliser=normaliser)
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.normaliser != normaliser))
            bulk.delete_keys(conn, table, ("unique_id",), [(key,) for key in gone])
            bulk.upsert_frame(conn, table, frame, ("unique_id",))

    def reviews(self, statuses: tuple[str, ...] = ("pending",)) -> pd.DataFrame:
        r = schema.match_reviews
        with self.engine.connect() as conn:
            frame = bulk.read_rows(conn, select(r).where(r.c.status.in_(statuses))
                                   .order_by(r.c.match_probability.desc(), r.c.left_id, r.c.right_id))
        frame["fields"] = frame["fields"].map(lambda v: json.loads(v) if isinstance(v, str) else {})
        return frame.rename(columns={"left_id": "left", "right_id": "right", "status": "decision"})

    def decide_review(self, left: str, right: str, decision: str, decided_by: str, note: str | None = None) -> bool:
        """Record a person's decision on two records ("system:id", either order). A pair that was never
        queued may be decided too (to split an automatic merge, say). Returns whether it was queued."""
        if decision not in ("accepted", "rejected"):
            raise ValueError("decision must be 'accepted' or 'rejected'")
        left, right = sorted((left, right))
        r = schema.match_reviews
        values = {"status": decision, "decided_by": decided_by, "decided_at": utcnow(), "note": note}
        with self.engine.begin() as conn:
            queued = conn.execute(update(r).where(r.c.left_id == left, r.c.right_id == right).values(**values))
            if queued.rowcount == 0:
                conn.execute(insert(r).values(left_id=left, right_id=right, **values))
        return queued.rowcount > 0

    # --- generic tables -------------------------------------------------------------------------------
    def read_table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The table's rows, as `hub.bulk.read_rows` reads them; only `columns` when given (a profile's JSON or a
        payload is most of a row)."""
        table = schema.metadata.tables[name]
        query = select(table) if columns is None else select(*(table.c[c] for c in columns))
        with self.engine.connect() as conn:
            return bulk.read_rows(conn, query)

    def read_keyed(self, name: str, columns: list[str], key: str, values: list, batch: int = 500) -> pd.DataFrame:
        """`columns` of the rows whose `key` is one of `values`: the whole table read once when they are most of
        it, otherwise in slices of `batch` keys (a push reading the JSON of 36,000 changed profiles of 156,000)."""
        table = schema.metadata.tables[name]
        query = select(*(table.c[c] for c in columns))
        if len(values) > self.count(name) // 2:
            frame = self.read_table(name, list(dict.fromkeys([*columns, key])))
            return frame.loc[frame[key].isin(pd.Index(values, dtype=object)), columns].reset_index(drop=True)
        with self.engine.connect() as conn:
            slices = [values[start:start + batch] for start in range(0, len(values), batch)] or [[]]
            parts = [bulk.read_rows(conn, query.where(table.c[key].in_(part))) for part in slices]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def update_rows(self, name: str, rows: list[dict], key_columns: tuple[str, ...]) -> None:
        """Set the other columns of `rows` on the rows with their keys (one statement, many parameter sets)."""
        if not rows:
            return
        table = schema.metadata.tables[name]
        values = [c for c in rows[0] if c not in key_columns]
        statement = update(table).where(and_(*(table.c[k] == bindparam(f"key_{k}") for k in key_columns))).values(
            {c: bindparam(f"new_{c}") for c in values})
        with self.engine.begin() as conn:
            conn.execute(statement, [{**{f"key_{k}": r[k] for k in key_columns}, **{f"new_{c}": r[c] for c in values}}
                                     for r in rows])

    def count(self, name: str) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(schema.metadata.tables[name]))

    def replace_rows(self, name: str, rows: list[dict], where=None) -> None:
        """Delete the rows matching `where` (all rows when None) and insert `rows` in bulk, atomically."""
        table = schema.metadata.tables[name]
        with self.engine.begin() as conn:
            conn.execute(delete(table) if where is None else delete(table).where(where(table)))
            if rows:
                bulk.insert_frame(conn, table, _row_frame(rows))

    def replace_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Make `frame` the whole content of the table, atomically; written in bulk slices (hub.bulk), not as a
        list of dicts (a crosswalk of a million rows)."""
        table = schema.metadata.tables[name]
        with self.engine.begin() as conn:
            conn.execute(delete(table))
            bulk.insert_frame(conn, table, frame)

    def merge_frame(self, name: str, frame: pd.DataFrame, previous: pd.DataFrame, keys: tuple[str, ...],
                    ignore: tuple[str, ...] = ()) -> dict:
        """Make `frame` the whole content of the table, given `previous`, the table as read before: write only
        the rows that are new or differ in a column not in `ignore`, delete those whose key is gone, atomically.
        A reconcile changing 1 % of the customers rewrites those, not 300,000 crosswalk rows."""
        table = schema.metadata.tables[name]
        compared = [c.name for c in table.columns if c.name not in ignore and c.name not in keys]
        after = pd.MultiIndex.from_frame(frame[list(keys)].astype(object))
        before = pd.MultiIndex.from_frame(previous[list(keys)].astype(object)) if len(previous) else after[:0]
        changed = ~after.isin(before)
        if len(previous):
            aligned = previous.set_axis(before).reindex(after)
            for column in compared:
                changed |= ~_same(frame[column], aligned[column])
        gone = [tuple(k) for k in before[~before.isin(after)]]
        with self.engine.begin() as conn:
            bulk.delete_keys(conn, table, keys, gone)
            bulk.upsert_frame(conn, table, frame[changed], keys)
        return {"written": int(changed.sum()), "deleted": len(gone)}

    def insert_rows(self, name: str, rows: list[dict]) -> None:
        """Add `rows`, in bulk (a push's receipt for each of 156,000 customers)."""
        if rows:
            with self.engine.begin() as conn:
                bulk.insert_frame(conn, schema.metadata.tables[name], _row_frame(rows))

    # --- run history ------------------------------------------------------------------------------------
    def start_run(self, run_id: str, dag_id: str, window_start: datetime, window_end: datetime, full_refresh: bool) -> None:
        self.replace_rows("run_stages", [], where=lambda t: t.c.run_id == run_id)
        self.replace_rows("runs", [{
            "run_id": run_id, "dag_id": dag_id, "status": "running", "window_start": window_start,
            "window_end": window_end, "full_refresh": full_refresh, "started_at": utcnow()}],
            where=lambda t: t.c.run_id == run_id)

    def record_stage(self, run_id: str, stage: str, started_at: datetime, counts: dict) -> None:
        finished = utcnow()
        self.upsert_rows("run_stages", [{
            "run_id": run_id, "stage": stage, "started_at": started_at, "finished_at": finished,
            "duration_s": round((finished - started_at).total_seconds(), 3),
            "counts": json.dumps(counts, default=str)}], ("run_id", "stage"))

    def stages(self, run_id: str) -> pd.DataFrame:
        t = schema.run_stages
        with self.engine.connect() as conn:
            frame = bulk.read_rows(conn, select(t).where(t.c.run_id == run_id).order_by(t.c.started_at))
        frame["counts"] = frame["counts"].map(json.loads)
        return frame

    def finish_run(self, run_id: str, status: str, summary: dict) -> None:
        t = schema.runs
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.run_id == run_id).values(
                status=status, finished_at=utcnow(), summary=json.dumps(summary, default=str)))

    def run(self, run_id: str) -> dict | None:
        t = schema.runs
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.run_id == run_id)).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["summary"] = json.loads(out["summary"]) if out["summary"] else None
        return out

    def last_runs(self, limit: int = 10) -> list[dict]:
        t = schema.runs
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.started_at.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]
