"""How an API source walks through a result, page by page: what `after` its next `_page` call gets.

- keyset: the last record's primary key (`id > after`): stable while records are written, the default;
- offset: the number of records read so far (`limit_start`, `offset`);
- page: the page number, from 1 (`page=2`);
- cursor: an opaque token or next-page URL the API answered with (HubSpot's `paging.next.after`,
  Salesforce's `nextRecordsUrl`); `_page` sets it on the source as `next_cursor`, None at the end.
A page shorter than asked ends keyset, offset and page paging; the cursor ends when the API gives none.
"""
from __future__ import annotations

from typing import Any, Literal

Paging = Literal["keyset", "offset", "page", "cursor"]
FIRST: dict[str, Any] = {"keyset": None, "offset": 0, "page": 1, "cursor": None}


def following(paging: Paging, after: Any, page: list[dict], primary_key: str, limit: int, cursor: Any) -> tuple[bool, Any]:
    """(more pages?, the next `after`) once `page` has been read."""
    if paging == "cursor":
        return cursor is not None, cursor
    if len(page) < limit:
        return False, None
    if paging == "keyset":
        return True, page[-1][primary_key]
    if paging == "offset":
        return True, after + len(page)
    return True, after + 1
