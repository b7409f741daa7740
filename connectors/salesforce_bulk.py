"""Salesforce Bulk API 2.0 ingest upsert: one job per slice of records (create, upload CSV, close, poll, read the
results), mapped back to one PushResult per payload, in payload order.

The vendor's rules this follows (Bulk API 2.0 Developer Guide): an upload may hold 150 MB after base64, so keep the
CSV under 100 MB; an empty cell leaves a field unchanged and #N/A sets it to null; successfulResults and
failedResults come in no guaranteed order, so they are matched back by the external id column; a record in
neither list (a Failed or Aborted job, or one still running when we stop waiting) is not confirmed and is reported
rejected, so the next run sends it again (an upsert by external id cannot duplicate it).
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections import deque

from connectors.http import HttpClient
from connectors.salesforce import PushResult
from erp2crm.errors import DataError, Erp2CrmError, QuotaExhausted, TransientError

log = logging.getLogger(__name__)
NULL = "#N/A"
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
# Salesforce caps a job by size, not by records (it splits jobs into 10,000-record batches itself). This cap
# bounds what one job holds in the worker's memory (its CSV and its result files) and what a Failed job sends
# back to the next run.
MAX_RECORDS_PER_JOB = 100_000
TERMINAL = ("JobComplete", "Failed", "Aborted")


def cell(value) -> str:
    """A payload value as a CSV cell. None and "" both become #N/A: an empty cell would leave the CRM's old value
    in place, where an sObject Collections upsert of the same payload clears it."""
    if value is None or value == "":
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _csv_line(cells: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)  # quotes cells with commas, quotes or line breaks
    return out.getvalue().encode("utf-8")


class BulkUpsert:
    def __init__(self, client: HttpClient, api_version: str, sobject: str, external_id_field: str,
                 max_records_per_job: int = MAX_RECORDS_PER_JOB, max_upload_bytes: int = MAX_UPLOAD_BYTES,
                 first_poll_s: float = 1.0, max_poll_s: float = 20.0, max_wait_s: float = 2 * 3600):
        self.client, self.sobject, self.external_id_field = client, sobject, external_id_field
        self.jobs_path = f"services/data/{api_version}/jobs/ingest"
        self.max_records_per_job, self.max_upload_bytes = max_records_per_job, max_upload_bytes
        self.first_poll_s, self.max_poll_s, self.max_wait_s = first_poll_s, max_poll_s, max_wait_s

    def upsert(self, payloads: list[dict]) -> list[PushResult]:
        ext = self.external_id_field
        columns = list(dict.fromkeys([ext, *(k for p in payloads for k in p)]))
        # A key a payload lacks is an empty cell: left unchanged, as a field left out of a Collections record.
        rows = [[cell(p[c]) if c in p else "" for c in columns] for p in payloads]
        header, lines = _csv_line(columns), [_csv_line(r) for r in rows]
        results: list[PushResult | None] = [None] * len(payloads)
        for start, end in self._slices(header, lines):
            body = header + b"".join(lines[start:end])
            self._run_job(body, range(start, end), payloads, [r[0] for r in rows], results)
        return results  # every slot filled by _run_job

    def _slices(self, header: bytes, lines: list[bytes]):
        """(start, end) of each job's records: at most max_records_per_job, and under max_upload_bytes."""
        start, size = 0, len(header)
        for i, line in enumerate(lines):
            if i > start and (i - start >= self.max_records_per_job or size + len(line) > self.max_upload_bytes):
                yield start, i
                start, size = i, len(header)
            size += len(line)
        if start < len(lines):
            yield start, len(lines)

    def _run_job(self, body: bytes, indexes: range, payloads: list[dict], ext_cells: list[str],
                 results: list[PushResult | None]) -> None:
        job_id = self._open_job(body)
        job_path = f"{self.jobs_path}/{job_id}"
        self._close(job_path)
        info = self._wait(job_path)
        state = info.get("state")
        pending: dict[str, deque[int]] = {}  # external id cell as sent -> payload indexes awaiting their result
        for i in indexes:
            pending.setdefault(ext_cells[i], deque()).append(i)

        def claim(row: dict) -> int | None:
            queue = pending.get(row.get(self.external_id_field, ""))
            return queue.popleft() if queue else None

        if state in TERMINAL:  # a running job's result sets are not final: its records count as unconfirmed
            for row in self._results(f"{job_path}/successfulResults"):
                if (i := claim(row)) is not None:
                    results[i] = PushResult(payloads[i].get(self.external_id_field), True,
                                            row.get("sf__Created") == "true", row.get("sf__Id") or None)
            if info.get("numberRecordsFailed", 1):  # a failed-records read only when some failed
                for row in self._results(f"{job_path}/failedResults"):
                    if (i := claim(row)) is not None:
                        results[i] = PushResult(payloads[i].get(self.external_id_field), False,
                                                error=row.get("sf__Error") or "rejected without an error message")
        detail = f"{state}: {info['errorMessage']}" if info.get("errorMessage") else state
        why = f"not processed by Bulk API job {job_id} ({detail})"
        left = [i for queue in pending.values() for i in queue]
        for i in left:
            results[i] = PushResult(payloads[i].get(self.external_id_field), False, error=f"{why}; sent again next run")
        log.info("Bulk API job %s: %d records, %s, %d not confirmed", job_id, len(indexes), state, len(left))

    def _open_job(self, body: bytes) -> str:
        """Create a job and upload its CSV: the job's id. The upload is sent once per job: when its answer is lost
        (a timeout, a dropped connection, a gateway's 5xx) nobody knows whether Salesforce took the data, and a
        second upload to the job would add every row again (failing them all as duplicate external ids) or be
        refused. So after a transient failure the job is aborted and a new one takes the data."""
        spec = {"object": self.sobject, "externalIdFieldName": self.external_id_field, "contentType": "CSV",
                "operation": "upsert", "lineEnding": "LF"}
        client = self.client
        for attempt in range(client.max_retries + 1):
            job_id = client.request("POST", self.jobs_path, json=spec).json()["id"]
            job_path = f"{self.jobs_path}/{job_id}"
            retries, client.max_retries = client.max_retries, 0
            try:
                client.request("PUT", f"{job_path}/batches", data=body, headers={"Content-Type": "text/csv"})
                return job_id
            except TransientError as e:
                if isinstance(e, QuotaExhausted) or attempt == retries:
                    raise
                log.warning("Bulk API job %s: upload failed (%s); aborting it for a new job", job_id, e)
            finally:
                client.max_retries = retries
            try:
                client.request("PATCH", job_path, json={"state": "Aborted"})
            except Erp2CrmError:  # best effort: an open job nobody closes never runs
                pass
            client.sleep(min(client.max_backoff_s, client.backoff_s * 2 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _close(self, job_path: str) -> None:
        """Mark the upload complete. When the answer to a first attempt was lost (a timeout, a dropped connection)
        after Salesforce had closed the job, the retry is refused (400: the job is no longer Open): the job info
        then says the close did happen."""
        try:
            self.client.request("PATCH", job_path, json={"state": "UploadComplete"})
        except DataError:
            if self.client.request("GET", job_path).json().get("state") in (None, "Open"):
                raise

    def _wait(self, job_path: str) -> dict:
        """Poll the job with exponential backoff until it ends, or until max_wait_s have passed."""
        delay, waited = self.first_poll_s, 0.0
        while True:
            self.client.sleep(delay)
            waited += delay
            info = self.client.request("GET", job_path).json()
            if info.get("state") in TERMINAL:
                return info
            if waited >= self.max_wait_s:
                log.warning("Bulk API job %s still %s after %.0f s: its records count as not confirmed",
                            info.get("id"), info.get("state"), waited)
                return info
            delay = min(self.max_poll_s, delay * 2)

    def _results(self, path: str) -> list[dict]:
        # Decoded as UTF-8 whatever the header says: requests would read text/csv without a charset as Latin-1.
        text = self.client.request("GET", path).content.decode("utf-8")
        return list(csv.DictReader(io.StringIO(text, newline=""))) if text.strip() else []
