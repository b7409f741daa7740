"""erp_crm_customer_sync: ERP orders, invoices and tickets → unified, enriched customer profiles → CRM.

Wiring only: the stages are `erp2crm.stages`, each one call into `erp2crm.pipeline`; tasks pass the run id and
counts through XCom, never data. Sources and targets come from the configuration at run time (one mapped task
each), so parsing this file does no I/O. The window is the data interval, widened by each source's look-back;
`airflow backfill create --dag-id erp_crm_customer_sync --from-date … --to-date …` replays past intervals.
"""
from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Param, dag

from erp2crm import stages


@dag(
    dag_id="erp_crm_customer_sync",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=stages.DEFAULT_ARGS,
    tags=["erp2crm", "sync"],
    params={
        "full_refresh": Param(False, type="boolean",
                              description="Read every source row, not only those changed in the data interval."),
        "as_of": Param(None, type=["null", "string"],
                       description="Compute profiles as of this UTC date or timestamp (default: end of the data interval)."),
    },
    doc_md=__doc__,
)
def erp_crm_customer_sync():
    stages.sync()


erp_crm_customer_sync()
