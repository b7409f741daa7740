"""The API source base class walks a result with each paging strategy: every record once, in order, ending
on a short page or a missing cursor, over a small in-memory API (a stand-in for an HTTP API, not for a
component a user runs)."""
from __future__ import annotations

import pytest

from connectors.api import ApiSource, Query
from connectors.mapping import SourceMapping

RECORDS = [{"id": i, "write_date": None, "create_date": "2026-06-01 00:00:00", "name": f"Customer {i}"}
           for i in range(1, 24)]
MAPPING = SourceMapping.model_validate({"source": "memory", "streams": {"customer_record": {
    "table": "customers", "primary_key": "id", "updated_at": ["write_date", "create_date"],
    "fields": {"name": "name"}}}})


class MemoryApi(ApiSource):
    def __init__(self, paging: str, page_size: int):
        super().__init__("memory", MAPPING)
        self.paging, self.page_size, self.afters = paging, page_size, []

    def _page(self, query: Query, after, limit: int) -> list[dict]:
        self.afters.append(after)
        if self.paging == "keyset":
            rows = [r for r in RECORDS if after is None or r["id"] > after][:limit]
        elif self.paging == "offset":
            rows = RECORDS[after:after + limit]
        elif self.paging == "page":
            rows = RECORDS[(after - 1) * limit:after * limit]
        else:  # the API answers an opaque token for the next page, none after the last
            start = int(after.removeprefix("tok-")) if after else 0
            rows = RECORDS[start:start + limit]
            self.next_cursor = f"tok-{start + limit}" if start + limit < len(RECORDS) else None
        return [{f: r[f] for f in query.fields} for r in rows]

    def _count(self, query: Query) -> int:
        return len(RECORDS)


@pytest.mark.parametrize("paging, page_size, afters", [
    ("keyset", 5, [None, 5, 10, 15, 20]),
    ("offset", 5, [0, 5, 10, 15, 20]),
    ("page", 5, [1, 2, 3, 4, 5]),
    ("cursor", 5, [None, "tok-5", "tok-10", "tok-15", "tok-20"]),
    ("keyset", 23, [None, 23]),  # a full last page needs one more, empty, page to know it was the last
    ("cursor", 23, [None]),
])
def test_each_paging_strategy_reads_every_record_once(paging, page_size, afters):
    source = MemoryApi(paging, page_size)
    rows = [r for chunk in source.extract("customer_record", None, chunk_size=4) for r in chunk["name"]]
    assert rows == [r["name"] for r in RECORDS]
    assert source.afters == afters


@pytest.mark.parametrize("paging", ["keyset", "offset", "page", "cursor"])
def test_check_probes_from_the_first_page_of_each_strategy(paging):
    source = MemoryApi(paging, 5)
    assert source.check() == {"customer_record": len(RECORDS)}
    assert source.afters == [{"keyset": None, "offset": 0, "page": 1, "cursor": None}[paging]]
