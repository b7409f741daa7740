"""Outbound mappings (mappings/<target>.yaml): profile fields → CRM fields, and the payload hash that decides
whether a record changed since its last confirmed write."""
from __future__ import annotations

import hashlib
import json
import math
from functools import cached_property
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from erp2crm.config import format_validation_error, read_yaml
from erp2crm.errors import ConfigError


class FieldRule(BaseModel):
    """A CRM field's source and owner: erp (always written), fill_if_empty (written when the CRM's value is
    empty, and on create) or crm (never written: the CRM's users own it)."""
    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(None, alias="from")  # the profile field
    owner: Literal["erp", "fill_if_empty", "crm"] = "erp"

    @model_validator(mode="after")
    def _needs_source(self) -> "FieldRule":
        if self.owner != "crm" and not self.source:
            raise ValueError(f"'from' (the profile field) is required unless owner is crm")
        return self


# What a contact payload can be built from: the canonical contact's fields, and first_name / last_name (the ERP's
# given and family name; an ERP with one name field has it split, erp2crm/contacts.py), source_ids (the ERP records
# merged into this CRM contact) and customer_id (the unified customer of its account).
CONTACT_FIELDS = frozenset({"name", "given_name", "family_name", "email", "phone", "job_title", "is_active",
                            "updated_at", "first_name", "last_name", "source_ids", "customer_id"})


class AccountLink(BaseModel):
    """How a contact is linked to its account, exactly one of: `relationship` (Salesforce: a relationship field set
    by the account's external id, {"Account": {"<account external id field>": customer id}}); `field` (a lookup
    field set to the account's CRM id, as BottleCRM's `account`); `association` (HubSpot: the object type the
    contact is associated with through the v4 default association, after the upsert)."""
    model_config = ConfigDict(extra="forbid")
    relationship: str | None = None
    field: str | None = None
    association: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "AccountLink":
        given = [k for k in ("relationship", "field", "association") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of relationship, field or association "
                             f"(got {', '.join(given) or 'none'})")
        return self


class ContactsMapping(BaseModel):
    """The contacts of company customers on the target: one CRM record per contact person, keyed by its own
    external id, linked to the account of its unified customer."""
    model_config = ConfigDict(extra="forbid")
    sobject: str  # the CRM object (Salesforce Contact, HubSpot contacts, BottleCRM Contact)
    external_id_field: str  # holds the contact key (erp2crm/contacts.py), so that retries never duplicate
    account: AccountLink
    fields: dict[str, str | FieldRule] = Field(min_length=1)  # CRM field → contact field (CONTACT_FIELDS)
    # Retiring by flag: "active", or why the contact is retired (merged into another contact, inactive, gone).
    status_field: str | None = None

    @model_validator(mode="after")
    def _known_fields(self) -> "ContactsMapping":
        unknown = sorted({r.source for r in self.rules.values() if r.source} - CONTACT_FIELDS)
        if unknown:
            raise ValueError(f"unknown contact field(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(CONTACT_FIELDS))}")
        return self

    @cached_property
    def rules(self) -> dict[str, FieldRule]:
        return {crm: rule if isinstance(rule, FieldRule) else FieldRule(**{"from": rule})
                for crm, rule in self.fields.items()}

    def fill_if_empty(self) -> list[str]:
        return [crm for crm, rule in self.rules.items() if rule.owner == "fill_if_empty"]


class OutboundMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str
    sobject: str = "Account"
    external_id_field: str  # holds the unified customer id, so retries can never create duplicates
    # CRM field → profile field (ERP-owned), or {from: profile field, owner: erp | fill_if_empty | crm}
    fields: dict[str, str | FieldRule] = Field(min_length=1)
    max_text_length: int = 255
    # Retiring by flag: this field says "active", or why the record is retired (merged, inactive, gone);
    # merged_into_field names the unified customer a merged one went into.
    status_field: str | None = None
    merged_into_field: str | None = None
    contacts: ContactsMapping | None = None  # the customers' contact persons, pushed after the accounts

    @cached_property  # built once per mapping, not once per payload
    def rules(self) -> dict[str, FieldRule]:
        return {crm: rule if isinstance(rule, FieldRule) else FieldRule(**{"from": rule})
                for crm, rule in self.fields.items()}

    def fill_if_empty(self) -> list[str]:
        return [crm for crm, rule in self.rules.items() if rule.owner == "fill_if_empty"]


def load_outbound(path: Path, profile_fields: set[str] | None = None) -> OutboundMapping:
    try:
        mapping = OutboundMapping.model_validate(read_yaml(path))
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e)) from None
    if profile_fields is not None:
        unknown = sorted({r.source for r in mapping.rules.values() if r.source} - profile_fields)
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
    """Everything the target should hold for this customer, CRM-owned fields left out (fill-if-empty ones are
    in: the push drops those the CRM already has a value for)."""
    payload = {mapping.external_id_field: customer_id}
    for crm_field, rule in mapping.rules.items():
        if rule.owner == "crm":
            continue
        value = _value(profile.get(rule.source))
        if isinstance(value, str):
            value = value[:mapping.max_text_length]
        payload[crm_field] = value
    if mapping.status_field:
        payload[mapping.status_field] = "active"
        if mapping.merged_into_field:
            payload[mapping.merged_into_field] = None
    return payload


def build_contact_payload(mapping: OutboundMapping, key: str, values: dict, customer_id: str,
                          account_crm_id: str | None) -> dict:
    """A contact's payload: its external id, its fields (CRM-owned ones left out) and, for a relationship or
    lookup field, the link to its account."""
    section = mapping.contacts
    payload = {section.external_id_field: key}
    for crm_field, rule in section.rules.items():
        if rule.owner == "crm":
            continue
        value = _value(values.get(rule.source))
        payload[crm_field] = value[:mapping.max_text_length] if isinstance(value, str) else value
    if section.status_field:
        payload[section.status_field] = "active"
    link = section.account
    if link.relationship:
        payload[link.relationship] = {mapping.external_id_field: customer_id}
    elif link.field:
        payload[link.field] = account_crm_id
    return payload


def retirement_payload(mapping: OutboundMapping, customer_id: str, reason: str, merged_into: str | None) -> dict:
    """What flags a retired record: its status (merged, inactive or gone) and the customer it was merged into."""
    payload = {mapping.external_id_field: customer_id, mapping.status_field: reason}
    if mapping.merged_into_field:
        payload[mapping.merged_into_field] = merged_into
    return payload


# Bump when build_payload or _value gives another payload for the same profile and mapping: the push then rebuilds
# every payload once instead of trusting the source hashes stored with the last confirmed writes (erp2crm.push).
PAYLOAD_FORMAT = 1


def payload_text(payload: dict) -> str:
    """A payload's canonical JSON: what its hash is of, and what push state keeps of a confirmed write."""
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


def payload_hash(payload: dict, text: str | None = None) -> str:
    """The hash of `payload`; `text` is its `payload_text` when the caller has it already."""
    return hashlib.sha256((payload_text(payload) if text is None else text).encode()).hexdigest()
