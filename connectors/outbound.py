"""Outbound mappings (mappings/<target>.yaml): profile fields → CRM fields, and the payload hash that decides
whether a record changed since its last confirmed write."""
from __future__ import annotations

import hashlib
import json
import math
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from erp2crm.config import format_validation_error, read_yaml
from erp2crm.errors import ConfigError


class OutboundMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str
    sobject: str = "Account"
    external_id_field: str  # holds the unified customer id, so retries can never create duplicates
    fields: dict[str, str] = Field(min_length=1)  # CRM field → profile field
    max_text_length: int = 255


def load_outbound(path: Path, profile_fields: set[str] | None = None) -> OutboundMapping:
    try:
        mapping = OutboundMapping.model_validate(read_yaml(path))
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e)) from None
    if profile_fields is not None:
        unknown = sorted(set(mapping.fields.values()) - profile_fields)
        if unknown:
            raise ConfigError(f"{path}: fields: unknown profile field(s) {', '.join(unknown)}")
    return mapping


def _value(v):
    """JSON-ready, stable representation: the same profile always gives the same payload bytes."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, (pd.Timestamp, datetime)):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        return round(v, 2)
    if hasattr(v, "item"):  # numpy scalars
        return _value(v.item())
    return v


def build_payload(mapping: OutboundMapping, customer_id: str, profile: dict) -> dict:
    payload = {mapping.external_id_field: customer_id}
    for crm_field, profile_field in mapping.fields.items():
        value = _value(profile.get(profile_field))
        if isinstance(value, str):
            value = value[:mapping.max_text_length]
        payload[crm_field] = value
    return payload


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
