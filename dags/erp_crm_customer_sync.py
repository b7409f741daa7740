"""erp_crm_customer_sync: ERP orders, invoices and tickets → unified, enriched customer profiles → CRM.

Wiring only, and generated from the configuration: the schedule and start date are the constants that
`erp2crm dags generate` wrote into erp2crm_dag_config.py, so parsing reads no configuration. The stages are
`erp2crm.stages`, each one call into `erp2crm.pipeline`; tasks pass the run id and counts through XCom, never
data. Sources and targets come from the configuration at run time (one mapped task each). Each source is read
from its watermark (the end of its last successful run) or the data interval's start, whichever is earlier,
minus its look-back. `airflow backfill create --dag-id erp_crm_customer_sync --from-date … --to-date …`
replays past intervals.
"""
from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Param, dag

from erp2crm import stages
from erp2crm.dagconfig import generated

GENERATED = generated(__file__)


@dag(
    dag_id="erp_crm_customer_sync",
    schedule=GENERATED.SCHEDULE,
    start_date=datetime.fromisoformat(GENERATED.START_DATE).replace(tzinfo=timezone.utc),
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
    stages.sync(GENERATED.FINGERPRINT)


erp_crm_customer_sync()
