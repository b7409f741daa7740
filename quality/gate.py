"""Row-level quality gate: validate a DataFrame against a suite, split it into passed and quarantined rows.

Great Expectations does the checking (suites in `quality.suites`); this module only

* prepares a working copy (fresh RangeIndex, helper columns such as "customer is known"),
* runs the suite with ``result_format=COMPLETE`` on one process-wide ephemeral GX context,
* turns each failed expectation's ``unexpected_index_list`` into row masks (vectorised), and
* builds the quarantine columns ``reason_code`` / ``expectation`` / ``reason``.
"""
from __future__ import annotations

import logging
import re
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from string import Formatter
from typing import Any, Iterable

import numpy as np
import pandas as pd

from erp2crm.canonical import PARSE_ERRORS
from quality.suites import CUSTOMER_KNOWN, QUARANTINE, TEXT_HELPER, WARN, SuiteSpec, build_suite, get_spec

# GX logs at INFO level while importing (`_docs_decorators`: "Skipping registering function ...") and
# when creating an ephemeral context; under Airflow's logging setup these reach the task log. Quieten
# the package before it is imported; `_quiet_gx_loggers` also resets modules that set their own level.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

REASON_COLUMNS = ("reason_code", "expectation", "reason")
# COMPLETE gives `unexpected_index_list` (every failing row). No partial lists/counts and no
# pandas query string of all failing labels: they cost time and memory on big frames.
RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 0,
                 "return_unexpected_index_query": False}
_VALUE_WIDTH = 80  # values quoted in reasons are cut to this many characters


@dataclass
class GateResult:
    suite: str
    passed: pd.DataFrame
    quarantined: pd.DataFrame
    warnings: list[dict] = field(default_factory=list)
    rows_in: int = 0
    rows_passed: int = 0
    rows_quarantined: int = 0
    validation_result: Any = field(default=None, repr=False)  # the GX ExpectationSuiteValidationResult

    @property
    def success(self) -> bool:
        return self.rows_quarantined == 0


# --- the process-wide GX context --------------------------------------------------------------

class _GX:
    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints every pandas batch under 1 GB (an MD5 of `hash_pandas_object` over all of it) for a
        # batch marker that nothing here reads: 20 s of the staging gate's 170 s at the medium scale.
        pandas_execution_engine.HASH_THRESHOLD = 0
        _quiet_gx_loggers()
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        _quiet_gx_loggers()
        asset = self.context.data_sources.add_pandas("erp2crm_quality").add_dataframe_asset("frame")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole_frame")
        self.suites: dict[str, Any] = {}
        self.lock = threading.RLock()

    def suite(self, spec: SuiteSpec):
        with self.lock:
            if spec.name not in self.suites:
                self.suites[spec.name] = self.context.suites.add(build_suite(spec))
            return self.suites[spec.name]

    def validate(self, frame: pd.DataFrame, spec: SuiteSpec):
        """Run the suite on `frame` (the batch definition's whole-dataframe batch).

        This is what `Batch.validate(suite)` and `ValidationDefinition.run()` do inside, minus
        their extra costs: `Batch.validate` loads (and fingerprints) the frame a second time, and
        `ValidationDefinition.run` keeps every COMPLETE result in the context's in-memory store."""
        from great_expectations.validator.v1_validator import Validator

        suite = self.suite(spec)
        validator = Validator(batch_definition=self.batch_definition, result_format=RESULT_FORMAT,
                              batch_parameters={"dataframe": frame})
        with self.lock, warnings.catch_warnings():  # a GX context is not documented as thread-safe
            # GX 1.24 reads `Series.values` of tz-aware columns when it lists the failing pairs of a
            # column-pair expectation; pandas 3.1 deprecates that (the values are still correct).
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray that drops "
                                    "timezone information")
            return validator.validate_expectation_suite(suite)


_STATE: _GX | None = None
_STATE_LOCK = threading.Lock()


def gx_state() -> _GX:
    """The lazily created, reused ephemeral context (creating one costs seconds)."""
    global _STATE
    if _STATE is None:
        with _STATE_LOCK:
            if _STATE is None:
                _STATE = _GX()
    return _STATE


def _quiet_gx_loggers() -> None:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (name.startswith("great_expectations.") and isinstance(logger, logging.Logger)
                and logger.level not in (logging.NOTSET,) and logger.level < logging.WARNING):
            logger.setLevel(logging.WARNING)


# --- public API --------------------------------------------------------------------------------

def validate(df: pd.DataFrame, suite_name: str, *, known_customers: pd.DataFrame | None = None) -> GateResult:
    """Validate `df` against suite `suite_name`; failing rows are quarantined with their reasons.

    `known_customers` (columns source_system, source_id) lets document suites detect orphans; without
    it only documents with no customer_source_id at all count as orphans.
    """
    spec = get_spec(suite_name)
    if len(df) == 0:  # nothing to check (and an empty frame may lack columns): skip GX entirely
        quarantined = df.iloc[:0].copy()
        for col in REASON_COLUMNS:
            quarantined[col] = pd.Series([], index=quarantined.index, dtype="str")
        return GateResult(suite=suite_name, passed=df.iloc[:0], quarantined=quarantined)
    missing = sorted(spec.columns - set(df.columns) - {PARSE_ERRORS})
    if missing:
        raise ValueError(f"suite {suite_name!r}: input lacks column(s) {', '.join(missing)}")

    work = df.reset_index(drop=True)  # positions == labels inside GX
    if PARSE_ERRORS in spec.columns and PARSE_ERRORS not in work:  # a frame that did not come through a mapping
        work[PARSE_ERRORS] = pd.Series(None, index=work.index, dtype=object)
    if CUSTOMER_KNOWN in spec.helpers:
        work[CUSTOMER_KNOWN] = _customer_known(work, known_customers)
    if TEXT_HELPER in spec.helpers:
        work[TEXT_HELPER] = _joined_text(work, spec.text_fields)

    # Only the columns the suite reads: GX copies the frame for every row-conditioned metric.
    needed = spec.columns | set(spec.helpers) | ({PARSE_ERRORS} & set(work.columns))
    result = gx_state().validate(_nanosecond_dates(work[[c for c in work.columns if c in needed]]), spec)

    n = len(work)
    failed: list[tuple[str, str, str, dict, np.ndarray]] = []  # (code, type, template, kwargs, positions)
    warns: list[dict] = []
    errors: list[str] = []
    for res in result.results:
        cfg = res.expectation_config
        meta = cfg.meta or {}
        raised = _exception_messages(res.exception_info)
        if raised:
            errors.append(f"{cfg.type}({cfg.kwargs}): {'; '.join(raised)}")
            continue
        if res.success:
            continue
        positions = np.asarray(res.result.get("unexpected_index_list") or [], dtype=np.int64)
        count = int(res.result.get("unexpected_count") or len(positions))
        if meta.get("severity") == WARN:
            warns.append({"reason_code": meta["reason_code"], "expectation": cfg.type, "rows": count})
            continue
        if meta.get("severity") != QUARANTINE:
            raise ValueError(f"expectation {cfg.type} has no severity in its meta: {meta}")
        if count and len(positions) != count:
            # Never let failing rows through unnoticed.
            errors.append(f"{cfg.type}({cfg.kwargs}): {count} unexpected rows but "
                          f"{len(positions)} row indexes returned")
            continue
        failed.append((meta["reason_code"], cfg.type, meta.get("reason") or meta["reason_code"],
                       dict(cfg.kwargs), positions))
    if errors:
        raise RuntimeError(f"quality suite {suite_name!r} could not be evaluated: " + "; ".join(errors))

    bad = np.zeros(n, dtype=bool)
    for *_, positions in failed:
        bad[positions] = True
    q_pos = np.flatnonzero(bad)

    passed = df.iloc[np.flatnonzero(~bad)] if len(q_pos) else df  # no copy of a clean million-row entity
    quarantined = df.iloc[q_pos].copy()
    for col, values in zip(REASON_COLUMNS, _reasons(work, q_pos, failed)):
        quarantined[col] = pd.Series(values, index=quarantined.index, dtype="str")

    _trim(result)
    warns.sort(key=lambda w: (w["reason_code"], w["expectation"]))
    out = GateResult(suite=suite_name, passed=passed, quarantined=quarantined, warnings=warns,
                     rows_in=n, rows_passed=len(passed), rows_quarantined=len(quarantined),
                     validation_result=result)
    assert out.rows_in == out.rows_passed + out.rows_quarantined, out
    return out


# --- helpers -----------------------------------------------------------------------------------

_KEPT_EXAMPLES = 20  # failing rows kept per expectation in the stored result (Data Docs show examples, not all)


def _trim(result) -> None:
    """Cut the per-row lists of a COMPLETE result once the quarantine masks are built: a million failing row
    indexes are not worth keeping in memory or rendering into Data Docs."""
    for res in result.results:
        for key in ("unexpected_index_list", "unexpected_list", "unexpected_rows"):
            values = (res.result or {}).get(key)
            if isinstance(values, list) and len(values) > _KEPT_EXAMPLES:
                res.result[key] = values[:_KEPT_EXAMPLES]

_NS_MIN, _NS_MAX = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")


def _nanosecond_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Naive date columns as datetime64[ns]. GX 1.24 compares only nanosecond (or tz-aware) datetimes vectorised;
    the dates read from the hub are microsecond ones, which it compares one Python call per value. A date beyond
    the nanosecond range (years before 1677 or after 2262, implausible anyway) is held at its edge, so it fails
    the same checks; reasons quote the original value."""
    out = frame
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, np.dtype) and dtype.kind == "M" and dtype != np.dtype("datetime64[ns]"):
            values = frame[name]
            if out is frame:
                out = frame.copy(deep=False)
            present = values.dropna()
            if len(present) and (present.min() < _NS_MIN or present.max() > _NS_MAX):
                values = values.where(values.isna() | (values >= _NS_MIN), _NS_MIN)
                values = values.where(values.isna() | (values <= _NS_MAX), _NS_MAX)
            out[name] = values.astype("datetime64[ns]")
    return out


def _exception_messages(info: Any) -> list[str]:
    """Messages of exceptions GX caught while computing an expectation. `exception_info` is either
    one {"raised_exception", "exception_message", ...} dict or a dict of them keyed by metric id."""
    if not isinstance(info, dict):
        return []
    if "raised_exception" in info:
        return [str(info.get("exception_message"))] if info.get("raised_exception") else []
    return [m for v in info.values() for m in _exception_messages(v)]


def _customer_known(work: pd.DataFrame, known: pd.DataFrame | None) -> np.ndarray:
    """True where (source_system, customer_source_id) is a known customer record. Vectorised:
    both key columns are factorised jointly with `known`, then integer pair codes are looked up.

    Without `known` only a null/blank customer_source_id makes an orphan. Without a source system
    the customer cannot be looked up; that row is quarantined as missing_key already and is not
    called an orphan as well."""
    n = len(work)
    if known is None:
        _, cust_blank = _factorize_text(work["customer_source_id"], pd.Series([], dtype=object))
        return ~cust_blank
    system, sys_blank = _factorize_text(work["source_system"], known["source_system"])
    cust, cust_blank = _factorize_text(work["customer_source_id"], known["source_id"])
    pairs = system.astype(np.int64) * (int(cust.max(initial=0)) + 2) + cust
    right_ok = ~(sys_blank[n:] | cust_blank[n:])
    found = np.isin(pairs[:n], pairs[n:][right_ok])
    return (found & ~cust_blank[:n]) | sys_blank[:n]


def _joined_text(work: pd.DataFrame, fields) -> pd.Series:
    """Each row's `fields` as "field=value" lines (absent values left out; a line break inside a value becomes
    a space, so that every line is exactly one field). One pass over the rows: faster than joining column by
    column, which copies every growing string once per field."""
    columns = []
    for name in fields:
        values = work[name].to_numpy(dtype=object)
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            values = np.asarray([v if v is None or v.__class__ is str or pd.isna(v) else str(v) for v in values],
                                dtype=object)
        columns.append(values)
    prefixes = [name + "=" for name in fields]
    joined = ["".join([p + (v if "\n" not in v else v.replace("\n", " ")) + "\n"
                       for p, v in zip(prefixes, row) if v.__class__ is str])
              for row in zip(*columns)]
    return pd.Series(joined, index=work.index, dtype=object)


def _offending(texts: pd.Series, regex: str) -> np.ndarray:
    """For the (few) failing rows: "field 'value'" of the first line of the helper text the regex matches."""
    pattern = re.compile(regex)
    out = []
    for text in texts:
        found = "text"
        for line in str(text).splitlines():
            if pattern.search(line):
                name, _, value = line.partition("=")
                shown = value if len(value) <= _VALUE_WIDTH else value[:_VALUE_WIDTH - 1] + "…"
                found = f"{name} {shown!r}"
                break
        out.append(found)
    return np.asarray(out, dtype=object)


def _factorize_text(left: pd.Series, right: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Joint integer codes of two text columns and a "null or blank" mask (blankness is decided on
    the distinct values only)."""
    both = pd.concat([left.reset_index(drop=True), right.reset_index(drop=True)], ignore_index=True)
    codes, uniques = pd.factorize(both.astype("str"))
    uniques = pd.Series(uniques, dtype="str")
    blank_codes = np.flatnonzero(uniques.str.strip().eq("").to_numpy(dtype=bool, na_value=True))
    blank = (codes < 0) | np.isin(codes, blank_codes)
    return codes, blank


def _reasons(work: pd.DataFrame, q_pos: np.ndarray, failed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """reason_code / expectation / reason for the quarantined rows (positions `q_pos`), vectorised
    per failed expectation: codes sorted and de-duplicated; `expectation` lists, for each code in the
    same order, the expectation type(s) that raised it ('+'-joined when several); `reason` joins one
    sentence per failed expectation with '; '."""
    m = len(q_pos)
    codes = np.full(m, "", dtype=object)
    types = np.full(m, "", dtype=object)
    reasons = np.full(m, "", dtype=object)
    if m == 0 or not failed:
        return codes, types, reasons

    # (code, type, column) order makes the output deterministic.
    failed = sorted(failed, key=lambda f: (f[0], f[1], str(f[3].get("column", f[3].get("column_A", "")))))
    by_code: dict[str, list] = {}
    for f in failed:
        by_code.setdefault(f[0], []).append(f)

    for code, group in by_code.items():
        code_mask = np.zeros(m, dtype=bool)
        type_acc = np.full(m, "", dtype=object)
        for etype in dict.fromkeys(f[1] for f in group):  # distinct, in order
            type_mask = np.zeros(m, dtype=bool)
            for f in group:
                if f[1] == etype:
                    type_mask[np.searchsorted(q_pos, f[4])] = True
            sel = np.flatnonzero(type_mask)
            type_acc[sel] = type_acc[sel] + "+" + etype
            code_mask |= type_mask
        sel = np.flatnonzero(code_mask)
        codes[sel] = codes[sel] + ";" + code
        types[sel] = types[sel] + ";" + _strip1(type_acc[sel])

    for code, etype, template, kwargs, positions in failed:
        sel = np.searchsorted(q_pos, positions)
        sentences = _render(template, work.iloc[positions], kwargs)
        reasons[sel] = reasons[sel] + "; " + sentences

    return _strip1(codes), _strip1(types), _strip(reasons, 2)


def _strip1(arr: np.ndarray) -> np.ndarray:
    return _strip(arr, 1)


def _strip(arr: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(pd.Series(arr, dtype=object).str.slice(k).to_numpy(dtype=object), dtype=object)


_FORMATTER = Formatter()


def _render(template: str, rows: pd.DataFrame, kwargs: dict) -> np.ndarray:
    """Render `template` for every row of `rows` without a Python loop over rows."""
    out = np.full(len(rows), "", dtype=object)
    for literal, fname, _spec, conversion in _FORMATTER.parse(template):
        if literal:
            out = out + literal
        if fname is None:
            continue
        if fname in ("column", "column_A", "column_B", "max_value", "min_value"):
            value = kwargs.get(fname)
            piece: Any = f"{value:g}" if isinstance(value, float) else str(value)
        elif fname in ("value", "value_A", "value_B"):
            col = kwargs[{"value": "column", "value_A": "column_A", "value_B": "column_B"}[fname]]
            piece = _fmt(rows[col], quote=conversion == "r")
        elif fname == "offending":
            piece = _offending(rows[kwargs["column"]], kwargs["regex"])
        elif fname == "length":
            piece = rows[kwargs["column"]].astype(str).str.len().astype(str).to_numpy(dtype=object)
        elif fname in rows.columns:
            piece = _fmt(rows[fname], quote=conversion == "r")
        else:
            piece = "{" + fname + "}"
        out = out + piece
    return out


def _fmt(values: pd.Series, *, quote: bool = False) -> np.ndarray:
    """Short, readable text for values (dates without midnight times, nulls as 'null')."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        naive = getattr(values.dt, "tz", None) is None
        present = values.dropna()
        if naive and (present == present.dt.normalize()).all():
            text = values.dt.strftime("%Y-%m-%d")  # a calendar date
        else:
            text = values.astype(str)
    else:
        text = values.astype(str)
    text = pd.Series(text, index=values.index, dtype=object)
    long = text.str.len() > _VALUE_WIDTH
    if long.any():
        text = text.where(~long, text.str.slice(0, _VALUE_WIDTH - 1) + "…")
    if quote:
        text = "'" + text + "'"
    text = text.where(values.notna(), "null")
    return text.to_numpy(dtype=object)


def build_data_docs(results: Iterable[GateResult], folder: str | Path, run_name: str = "quality_gate") -> Path:
    """Render GX Data Docs for gate results into `folder` (a site of its own, not GX's temporary
    `local_site`); returns the path of index.html. Building replaces what the folder held: give each gate of
    a run its own folder."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    state = gx_state()
    ctx = state.context
    site = "erp2crm_" + uuid.uuid5(uuid.NAMESPACE_URL, str(folder)).hex[:12]
    keys = []
    with state.lock:
        if site not in (ctx.get_config().data_docs_sites or {}):
            ctx.add_data_docs_site(site_name=site, site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(folder)},
            })
        run_id = RunIdentifier(run_name=run_name)
        for i, r in enumerate(results):
            if r.validation_result is None:
                continue
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=r.suite),
                run_id=run_id, batch_identifier=f"{r.suite}-{i}")
            ctx.validation_results_store.store_validation_results(r.validation_result, key)
            keys.append(key)
        ctx.build_data_docs(site_names=[site], resource_identifiers=keys or None)
        for key in keys:  # the in-memory store would otherwise keep every result
            ctx.validation_results_store.remove_key(key)
    return folder / "index.html"
