"""erp_crm_backfill: re-read one source over a past period, then reconcile, enrich and push as the sync does.

For a source added late, a mapping fixed after the fact, or rows an ERP changed without touching their
update time: every row of `source` whose last change is in [start, end) is staged again (no look-back), and
the scheduled sync's own watermark is left where it is. Wiring only, as erp_crm_customer_sync.
"""
from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Param, dag

from erp2crm import stages
from erp2crm.dagconfig import generated

GENERATED = generated(__file__)


@dag(
    dag_id="erp_crm_backfill",
    schedule=None,
    start_date=datetime.fromisoformat(GENERATED.START_DATE).replace(tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=stages.DEFAULT_ARGS,
    tags=["erp2crm", "backfill"],
    params={
        # The configured sources are offered in the trigger form; one added since the last generation is
        # accepted as typed and checked against the configuration when the run begins.
        "source": Param(type="string", examples=list(GENERATED.SOURCES),
                        description="The source to re-read (a name under sources: in the configuration)."),
        "start": Param(type="string", format="date", description="First day re-read (UTC, inclusive)."),
        "end": Param(type="string", format="date", description="Day after the last one re-read (UTC, exclusive)."),
        "as_of": Param(None, type=["null", "string"],
                       description="Compute profiles as of this UTC date or timestamp (default: now)."),
    },
    doc_md=__doc__,
)
def erp_crm_backfill():
    stages.sync(GENERATED.FINGERPRINT)


erp_crm_backfill()
