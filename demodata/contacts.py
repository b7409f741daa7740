"""Contact persons of company customers: the people to call at a B2B customer, as each ERP keeps them.

Every company customer without a defect has 1-3 true contact persons (`make_people`), Chinese or Western like
the company, each with a work e-mail at the company's domain, a mobile and a job title. Each ERP record of the
company lists some of them (`contacts_of`), typed with noise: the name in Chinese characters or pinyin, split
into first and last name or not, e-mail case and stray spaces, an e-mail or phone left out, a person who left
(inactive). A person in two ERPs under the same customer carries the same e-mail in both, unless one of them
left it out. Tryton's party model has no contact persons, so only Odoo and ERPNext (and Dolibarr, rendered
from the ERPNext system) get contacts.

Defect (listed in bad_rows.csv as contact / orphan_customer): `orphans_per_system(n)` contacts per system
linked to a company that does not exist (deleted after the contact was entered). Contacts take their own
random streams, so every other table and the ground truth are exactly what they were without them.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from . import vocab
from .clock import DAY, Clock
from .defects import BadRow
from .identifiers import KeyFactory
from .people import Customer, Phone, _ascii, _pinyin
from .records import Record, format_email, format_phone, source_id

CONTACT_SYSTEMS = ("odoo", "erpnext")
PEOPLE_WEIGHTS = (45, 35, 20)  # 1, 2 or 3 contact persons per company
LISTED = 0.7  # share of a company's persons a record lists (at least one)
DROP = {"email": 0.15, "phone": 0.3, "job_title": 0.2}
LEFT_THE_COMPANY = 0.05
# Odoo contacts are res_partner rows: their ids start past every customer id and past the ids that orphan
# documents point to (at most 500 past the last customer), orphan contacts' parents lie between the two.
ODOO_ID_OFFSET = 1000
ORPHAN_PARENT_OFFSET = 500


@dataclass(frozen=True, slots=True)
class Person:
    """A true contact person: names in the person's own script, and romanised."""
    tid: str  # the company customer's
    family: str
    given: str
    family_latin: str
    given_latin: str
    chinese: bool
    email: str
    mobile: Phone
    title: tuple[str, str]  # (Chinese, English)


@dataclass(slots=True)
class Contact:
    """One ERP's record of a person: `record` is the company's customer record (None: an orphan)."""
    system: str
    record: Record | None
    person: Person
    name: str  # the whole name, as a one-field ERP (Odoo) holds it
    first_name: str | None  # as a two-field ERP (ERPNext, Dolibarr) holds it
    last_name: str | None
    email: str | None
    phone: str | None
    job_title: str | None
    active: bool
    created: object
    written: object
    orphan_party: int | None = None
    id: int = 0
    source_id: str = ""


def orphans_per_system(n_customers: int) -> int:
    return max(1, n_customers // 300)


def _person(customer: Customer, rng: random.Random, keys: KeyFactory) -> Person:
    domain = customer.email.rsplit("@", 1)[-1] if "@" in customer.email else "example.com"
    if customer.market == "CN":
        family, family_latin = rng.choice(vocab.SURNAMES)
        given = "".join(rng.sample(vocab.GIVEN_CHARS, rng.choice((1, 2, 2))))
        given_latin = _pinyin(given)
        local = rng.choice([f"{family_latin}.{given_latin}", f"{given_latin}.{family_latin}",
                            f"{family_latin[0]}{given_latin}"]).lower()
        mobile = Phone("86", "", keys.cn_mobile()[3:])
        chinese = True
    else:
        spec = vocab.WESTERN[customer.market]
        given = given_latin = rng.choice(spec["first"])
        family = family_latin = rng.choice(spec["last"])
        local = rng.choice([f"{_ascii(given)}.{_ascii(family)}", f"{_ascii(given)[0]}.{_ascii(family)}"])
        area = customer.phone.area or "30"
        number = keys.western_phone(customer.market, area)
        mobile = Phone(spec["phone_cc"], area, number[1 + len(spec["phone_cc"]) + len(area):])
        chinese = False
    return Person(customer.tid, family, given, family_latin, given_latin, chinese, keys.email(local, domain), mobile,
                  rng.choice(vocab.JOB_TITLES))


def make_people(customers: list[Customer], seed: int) -> dict[str, list[Person]]:
    """The contact persons of every company customer without a defect, by customer tid."""
    rng = random.Random(f"demodata/{seed}/contacts/people")
    keys = KeyFactory(rng)
    people = {}
    for customer in customers:
        if customer.is_company and not customer.defect:
            k = rng.choices((1, 2, 3), weights=PEOPLE_WEIGHTS)[0]
            people[customer.tid] = [_person(customer, rng, keys) for _ in range(k)]
    return people


def _typed(person: Person, system: str, record: Record | None, rng: random.Random, clock: Clock,
           start) -> Contact:
    """How one ERP has the person: names, e-mail and phone with noise, some fields left out."""
    if person.chinese:
        style = rng.choices(("split", "whole", "pinyin"), weights=(50, 25, 25))[0]
    else:
        style = "split"
    if style == "pinyin":
        first, last = person.given_latin, person.family_latin
        whole = f"{person.family_latin} {person.given_latin}"  # family name first, as Chinese names are
    else:
        first, last = person.given, person.family
        whole = person.family + person.given if person.chinese else f"{person.given} {person.family}"
    if style == "whole":
        first, last = whole, None  # all of it typed into the first-name field
    email = format_email(person.email, rng) if rng.random() >= DROP["email"] else None
    phone = format_phone(person.mobile, rng) if rng.random() >= DROP["phone"] else None
    title = None
    if rng.random() >= DROP["job_title"]:
        title = person.title[0] if person.chinese and rng.random() < 0.8 else person.title[1]
    created = clock.between(rng, start, clock.end - DAY)
    return Contact(system, record, person, whole, first, last, email, phone, title,
                   rng.random() >= LEFT_THE_COMPANY, created, clock.between(rng, created, clock.end))


def _erpnext_names(contacts: list[Contact], customer_name) -> None:
    """Frappe names a contact after its full name and its first link ("Wei Wang-CUST-00012"), numbered when
    taken ("...-1")."""
    taken: set[str] = set()
    for c in contacts:
        full = " ".join(p for p in (c.first_name, c.last_name) if p)
        base = name = f"{full}-{customer_name(c)}"
        n = 0
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        c.source_id = name


def contacts_of(records: list[Record], people: dict[str, list[Person]], system: str, rng: random.Random,
                clock: Clock, n_orphans: int) -> tuple[list[Contact], list[BadRow]]:
    """The contacts one ERP holds for its customer records (ids in creation order), and the orphans' bad rows."""
    contacts = []
    for record in records:
        persons = people.get(record.customer.tid, [])
        if not persons:
            continue
        listed = [p for p in persons if rng.random() < LISTED] or [rng.choice(persons)]
        contacts += [_typed(p, system, record, rng, clock, record.created) for p in listed]
    max_party_id = len(records)
    with_people = [r for r in records if people.get(r.customer.tid)]
    orphans = []
    for _ in range(n_orphans if with_people else 0):
        template = rng.choice(with_people)
        orphan = _typed(rng.choice(people[template.customer.tid]), system, None, rng, clock, template.created)
        orphan.orphan_party = max_party_id + ORPHAN_PARENT_OFFSET + rng.randint(1, ODOO_ID_OFFSET - 600)
        orphans.append(orphan)
    contacts += orphans
    contacts.sort(key=lambda c: c.created)
    for n, contact in enumerate(contacts, 1):
        contact.id = max_party_id + ODOO_ID_OFFSET + n if system == "odoo" else n
        contact.source_id = str(contact.id)
    if system == "erpnext":
        _erpnext_names(contacts, lambda c: party_source_id(system, c))
    return contacts, [BadRow(system, "contact", c.source_id, "orphan_customer") for c in orphans]


def party_source_id(system: str, contact: Contact) -> str:
    """The customer record the contact is linked to, as its ERP keys it (an orphan's is a deleted one)."""
    if contact.orphan_party is not None:
        return source_id(system, contact.orphan_party)
    return contact.record.source_id
