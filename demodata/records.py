"""Customer records: how each ERP happens to have typed a true customer in.

Each system gets its own copy of the customer with realistic noise: another script (traditional
characters, pinyin), other phone and tax id formats, e-mail case and spaces, typos, abbreviations and
missing fields. Noise is drawn freely, then `_ensure_linked` checks the records of one customer with
the matcher's rule (shared tax id or e-mail, or shared phone between equally named records) and puts
back an e-mail where a record fell off the chain. That repair is what makes guarantee 1 of
`demodata.generate` hold by construction rather than by luck.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from . import vocab
from .clock import DAY, Clock
from .people import Customer, Phone
from .textnorm import norm_name, to_traditional, within_one_edit

SYSTEMS = ("odoo", "erpnext", "tryton")
# How often a Chinese name is kept in simplified script, converted to traditional, or romanised.
SCRIPT_WEIGHTS = {"odoo": (75, 10, 15), "erpnext": (50, 20, 30), "tryton": (40, 15, 45)}
DROP = {"email": 0.12, "phone": 0.10, "tax_id": 0.15, "address": 0.08}
ERPNEXT_TAX_DROP = 0.25  # ERPNext's tax_id field is optional and often left empty
IN_SYSTEM_DUPLICATE = 0.03
ARCHIVED = 0.04
TRYTON_NEVER_WRITTEN = 0.5


@dataclass(slots=True)
class Record:
    system: str
    customer: Customer
    name: str | None
    email: str | None
    phone: str | None
    tax_id: str | None
    street: str | None
    city: str | None
    postcode: str | None
    currency: str
    created: datetime
    written: datetime | None
    active: bool = True
    docs_until: datetime | None = None  # last instant documents may be dated; None: no documents
    extra_mobile: str | None = None  # Tryton only: a second contact mechanism
    ref: str | None = None  # Odoo only: internal reference
    replaced_by: Record | None = None  # Tryton only: merged into another party
    id: int = 0
    # Canonical (normalised) strong keys behind the formatted values, for the link check.
    keys: dict[str, str | None] = field(default_factory=dict)

    @property
    def source_id(self) -> str:
        return source_id(self.system, self.id)


def source_id(system: str, record_id: int) -> str:
    """Primary key as the ground truth writes it: ERPNext names, Odoo and Tryton integer ids."""
    return f"CUST-{record_id:05d}" if system == "erpnext" else str(record_id)


# ---------------------------------------------------------------- formatting noise

def format_phone(phone: Phone, rng: random.Random) -> str:
    """One of the ways people type the same number; all parse to the same E.164 with region CN."""
    cc, area, local = phone.cc, phone.area, phone.local
    if phone.is_mobile:
        a, b, c = local[:3], local[3:7], local[7:]
        options = [f"+86 {a} {b} {c}", local, f"0086-{a}-{b}-{c}", f"(+86) {a}-{b}-{c}", f"+86{local}",
                   f"{a}-{b}-{c}", f"{a} {b} {c}"]
        return rng.choices(options, weights=[20, 30, 8, 8, 14, 10, 10])[0]
    if cc == "86":
        h, t = local[:4], local[4:]
        return rng.choice([f"0{area}-{local}", f"0{area}-{h} {t}", f"+86 {area} {h} {t}", f"(0{area}) {local}",
                           f"0086 {area} {local}", f"+86-{area}-{local}"])
    # Abroad numbers must keep their country code: without it region CN would misread them.
    spaced = f"{local[:3]} {local[3:]}" if cc == "1" else local
    hyphened = f"{local[:3]}-{local[3:]}" if cc == "1" else local
    options = [f"+{cc} {area} {spaced}", f"00{cc} {area} {spaced}", f"+{cc}-{area}-{hyphened}"]
    options.append(f"+1 ({area}) {local[:3]}-{local[3:]}" if cc == "1" else f"+{cc} (0){area} {local}")
    return rng.choice(options)


def format_email(email: str, rng: random.Random) -> str:
    """Same mailbox, different case or stray spaces (strip + lower gives it back)."""
    if "@" not in email:  # a deliberately malformed address is stored as is
        return email
    local, domain = email.split("@", 1)
    title = ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
    variant = rng.choices(["exact", "title", "upper", "spaces", "title_spaces"], weights=[60, 15, 5, 15, 5])[0]
    if variant == "title":
        return title
    if variant == "upper":
        return email.upper()
    text = title if variant == "title_spaces" else email
    return rng.choice([" " + text, text + " ", "  " + text + " "]) if "spaces" in variant else text


def format_tax_id(tax_id: str, rng: random.Random) -> str:
    """Lower case, spaces or a hyphen; uppercasing and removing spaces/hyphens gives it back."""
    variant = rng.choices(["exact", "lower", "spaced", "hyphen", "lower_spaced"], weights=[55, 15, 15, 5, 10])[0]
    if variant in ("spaced", "lower_spaced"):
        if tax_id[:2].isalpha():  # EU VAT: DE 123 456 789
            body = tax_id[2:]
            tax_id = tax_id[:2] + " " + " ".join(body[i:i + 3] for i in range(0, len(body), 3))
        else:
            tax_id = " ".join(tax_id[i:i + 4] for i in range(0, len(tax_id), 4))
    elif variant == "hyphen":
        cut = 2 if tax_id[:2].isalpha() else 8
        tax_id = tax_id[:cut] + "-" + tax_id[cut:]
    return tax_id.lower() if variant.startswith("lower") else tax_id


_KEYBOARD = "qwertyuiop asdfghjkl zxcvbnm"


def latin_typo(name: str, rng: random.Random) -> str:
    """One substituted (neighbouring key), deleted or doubled ASCII letter, never the first one."""
    positions = [i for i, ch in enumerate(name) if i > 0 and ch.isascii() and ch.isalpha()]
    if not positions:
        return name
    i = rng.choice(positions)
    op = rng.choice(("sub", "del", "dup"))
    if op == "del":
        return name[:i] + name[i + 1:]
    if op == "dup":
        return name[:i] + name[i] + name[i:]
    k = _KEYBOARD.index(name[i].lower())
    neighbours = [c for c in (_KEYBOARD[k - 1] if k else " ", _KEYBOARD[k + 1] if k + 1 < len(_KEYBOARD) else " ")
                  if c != " "]
    new = rng.choice(neighbours)
    return name[:i] + (new.upper() if name[i].isupper() else new) + name[i + 1:]


def _chinese_name(customer: Customer, script: str, rng: random.Random) -> str:
    if script == "latin":
        weights = (70, 30) if customer.is_company else (50, 35, 15)
        name = rng.choices(customer.latin_names, weights=weights)[0]
        return latin_typo(name, rng) if rng.random() < 0.08 else name
    name = to_traditional(customer.name_zh) if script == "traditional" else customer.name_zh
    if "（" in name and rng.random() < 0.4:  # half-width brackets; NFKC makes them equal again
        name = name.replace("（", "(").replace("）", ")")
    return name + " " if rng.random() < 0.03 else name


def _western_name(customer: Customer, rng: random.Random) -> str:
    name = customer.latin_names[0]
    variant = rng.choices(["exact", "typo", "upper", "style"], weights=[70, 12, 8, 10])[0]
    if variant == "typo":
        return latin_typo(name, rng)
    if variant == "upper":
        return name.upper()
    if variant == "style":  # legal-form punctuation, or a double space in a person's name
        for old, new in ((" Inc.", ", Inc."), (" Ltd", " Ltd."), ("GmbH", "Gmbh")):
            if name.endswith(old.strip()):
                return name[: len(name) - len(old)] + new
        return name.replace(" ", "  ", 1)
    return name


def _address(customer: Customer, script: str, rng: random.Random) -> tuple[str | None, str | None, str | None]:
    addr = customer.address
    if addr.street_zh and script != "latin":
        street, city = addr.street_zh, addr.city_zh + ("市" if rng.random() < 0.25 else "")
        if script == "traditional":
            street, city = to_traditional(street), to_traditional(city)
        return street, city, addr.postcode
    street = addr.street_latin
    if rng.random() < 0.3:
        for word, abbreviation in vocab.STREET_ABBREVIATIONS:
            if word in street:
                street = street.replace(word, abbreviation, 1)
                break
    return street, addr.city_latin, addr.postcode


def _currency(system: str, customer: Customer, rng: random.Random) -> str:
    """Odoo mostly CNY some USD; ERPNext CNY/USD/EUR; Tryton CNY/EUR."""
    if customer.market == "CN":
        usd_share = {"odoo": 0.08, "erpnext": 0.15, "tryton": 0.0}[system]
        return "USD" if rng.random() < usd_share else "CNY"
    if system == "odoo":
        return "USD"
    if system == "tryton":
        return "EUR"
    return "USD" if customer.market == "US" else "EUR"


# ---------------------------------------------------------------- records

def _new_record(customer: Customer, system: str, rng: random.Random, clock: Clock) -> Record:
    """One ERP's record of the customer, with noise and some fields left empty."""
    if customer.market == "CN":
        script = rng.choices(("simplified", "traditional", "latin"), weights=SCRIPT_WEIGHTS[system])[0]
        name = _chinese_name(customer, script, rng)
    else:
        script, name = "latin", _western_name(customer, rng)
    keep = {k: rng.random() >= p for k, p in DROP.items()}
    if system == "erpnext" and rng.random() < ERPNEXT_TAX_DROP:
        keep["tax_id"] = False
    street, city, postcode = _address(customer, script, rng) if keep["address"] else (None, None, None)
    created = clock.between(rng, clock.years_ago(6), clock.end - 30 * DAY)
    record = Record(system, customer, name, None, None, None, street, city, postcode,
                    _currency(system, customer, rng), created, None)
    if keep["email"]:
        set_email(record, rng)
    if keep["phone"]:
        record.phone, record.keys["phone"] = format_phone(customer.phone, rng), customer.phone.e164
    if customer.tax_id and keep["tax_id"]:
        record.tax_id, record.keys["tax_id"] = format_tax_id(customer.tax_id, rng), customer.tax_id
    if system == "tryton" and customer.second_mobile:
        record.extra_mobile = format_phone(customer.second_mobile, rng)
        record.keys["extra_mobile"] = customer.second_mobile.e164
    if system == "odoo" and customer.is_company and rng.random() < 0.3:
        record.ref = f"C{rng.randint(10000, 99999)}"
    _set_lifecycle(record, rng, clock)
    return record


def set_email(record: Record, rng: random.Random) -> None:
    record.email, record.keys["email"] = format_email(record.customer.email, rng), record.customer.email


def _set_lifecycle(record: Record, rng: random.Random, clock: Clock) -> None:
    """Last write, archiving, and until when the record may carry documents."""
    if rng.random() < ARCHIVED:
        record.active = False
        record.written = clock.between(rng, record.created + 30 * DAY, clock.end)
        record.docs_until = record.written  # archived customers stop ordering
        return
    record.docs_until = clock.end
    if record.system == "tryton" and rng.random() < TRYTON_NEVER_WRITTEN:
        return
    record.written = clock.between(rng, record.created, clock.end)


def _bad_record(customer: Customer, system: str, rng: random.Random, clock: Clock) -> Record:
    """The single record of a bad customer: complete except for its defect, and no documents."""
    record = _new_record(customer, system, rng, clock)
    record.email = record.keys["email"] = customer.email  # a malformed address stays verbatim
    if customer.defect == "missing_name":
        record.name = "" if system == "erpnext" else None
    record.active, record.docs_until = True, None
    return record


def _duplicate(main: Record, rng: random.Random, clock: Clock) -> Record:
    """A second record of the customer in the same ERP.

    In Tryton it is the classic merge leftover: inactive, replaced_by the surviving party, its documents
    moved to the survivor. In Odoo and ERPNext it is a live duplicate with documents of its own.
    """
    dup = _new_record(main.customer, main.system, rng, clock)
    if main.system == "tryton":
        dup.active, dup.replaced_by, dup.docs_until = False, main, None
        dup.written = clock.between(rng, max(dup.created, main.created), clock.end)
    return dup


def customer_records(customer: Customer, rng: random.Random, clock: Clock) -> list[Record]:
    """All records of one true customer across its systems, linked per guarantee 1."""
    if customer.defect:
        return [_bad_record(customer, customer.systems[0], rng, clock)]
    records = []
    for system in customer.systems:
        records.append(_new_record(customer, system, rng, clock))
        if rng.random() < IN_SYSTEM_DUPLICATE:
            records.append(_duplicate(records[-1], rng, clock))
    _ensure_linked(records, rng)
    return records


# ---------------------------------------------------------------- guarantee 1

def linked(a: Record, b: Record, name_a: str, name_b: str) -> bool:
    """The matcher's rule: same tax id or e-mail; or same phone and names equal up to one typo."""
    ka, kb = a.keys, b.keys
    for key in ("tax_id", "email"):
        if ka.get(key) and ka.get(key) == kb.get(key):
            return True
    phones_a = {ka.get("phone"), ka.get("extra_mobile")} - {None}
    phones_b = {kb.get("phone"), kb.get("extra_mobile")} - {None}
    return bool(phones_a & phones_b) and within_one_edit(name_a, name_b)


def _components(records: list[Record]) -> list[int]:
    """Component label of each record (labels are indexes into `records`); n is tiny, so pairwise."""
    names = [norm_name(r.name) for r in records]
    label = list(range(len(records)))

    def find(i: int) -> int:
        while label[i] != i:
            i = label[i]
        return i

    for i in range(len(records)):
        for j in range(i + 1, len(records)):
            if find(i) != find(j) and linked(records[i], records[j], names[i], names[j]):
                label[find(j)] = find(i)
    return [find(i) for i in range(len(records))]


def _ensure_linked(records: list[Record], rng: random.Random) -> None:
    """Give e-mails back until every record of the customer is reachable from the first one."""
    while True:
        comps = _components(records)
        stray = next((i for i, c in enumerate(comps) if c != comps[0]), None)
        if stray is None:
            return
        holder = next((i for i, c in enumerate(comps) if c == comps[0] and records[i].keys.get("email")), 0)
        for i in (holder, stray):
            if not records[i].keys.get("email"):
                set_email(records[i], rng)
