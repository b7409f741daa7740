"""A profile as the hub stores it (profiles.profile): JSON text written once by enrich, read back by the profile gate,
the push and the re-ranking of segments."""
from __future__ import annotations

import json

import msgspec

_decode = msgspec.json.Decoder().decode


def profile_text(profile: dict) -> str:
    """The stored text of a profile (a dict of JSON values, timestamps and dates as their str)."""
    return json.dumps(profile, default=str, ensure_ascii=False)


def profile_from_text(text: str) -> dict:
    """A stored profile as `json.loads` gives it, about three times faster: the profile gate and the push each read
    every recomputed profile (156,000 at medium). Text msgspec refuses, such as the NaN `json.dumps` can write,
    goes through `json.loads`."""
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)
