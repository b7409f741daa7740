"""Seed a freshly created Tryton 8.2 database with customers and their documents, through proteus.

Run with the Tryton virtualenv's Python (it imports trytond, not erp2crm):
    python tryton_seed.py CONFIG_FILE DATABASE
What it creates is what the tests expect (tests/servers/tryton.py): parties with emails, phones,
addresses and tax identifiers (one inactive), confirmed sales invoiced on order, a draft and a cancelled
sale, posted invoices (one paid in cash) and complaints about sales.
"""
from __future__ import annotations

import os
import sys
from decimal import Decimal

CONFIG, DATABASE = sys.argv[1], sys.argv[2]
os.environ["TRYTOND_CONFIG"] = CONFIG

from proteus import Model, config as pconfig  # noqa: E402

pconfig.set_trytond(DATABASE, config_file=CONFIG)

from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, get_accounts  # noqa: E402
from trytond.modules.account_invoice.tests.tools import create_payment_term, set_fiscalyear_invoice_sequences  # noqa: E402
from trytond.modules.company.tests.tools import create_company  # noqa: E402

# (name, email, phone, tax id, street, city, postcode, country code, active)
PARTIES = [
    ("Acme Trading Ltd", "orders@acme.example", "+86 21 5555 0101", "91310000MA1FL8XQ3A", "1 Century Avenue", "Shanghai", "200120", "CN", True),
    ("张伟", "zhang.wei@example.cn", "+86 138 0013 8000", None, "88 Nanjing Road", "Shanghai", "200001", "CN", True),
    ("Müller GmbH", "info@mueller.example", "+49 30 1234567", "DE123456789", "Hauptstraße 5", "Berlin", "10115", "DE", True),
    ("Dupont SARL", "contact@dupont.example", "+33 1 23 45 67 89", None, "12 rue de Rivoli", "Paris", "75001", "FR", True),
    ("Old Customer Co", "old@customer.example", None, None, "9 Elm Street", "Springfield", "12345", "US", False),
]
for i in range(1, 21):
    PARTIES.append((f"Customer {i:02d}", f"customer{i:02d}@example.com", f"+1 202 555 01{i:02d}", None,
                    f"{i} Main Street", "Washington", f"200{i:02d}", "US", True))


def main() -> None:
    create_company()
    create_chart()
    fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear())
    fiscalyear.click("create_period")
    accounts = get_accounts()

    Country = Model.get("country.country")
    countries = {}
    for code, name in {"CN": "China", "DE": "Germany", "FR": "France", "US": "United States"}.items():
        countries[code] = Country(name=name, code=code)
        countries[code].save()

    Party = Model.get("party.party")
    parties = []
    for name, email, phone, tax_id, street, city, postcode, country, active in PARTIES:
        party = Party(name=name)
        if email:
            party.contact_mechanisms.new(type="email", value=email)
        if phone:
            party.contact_mechanisms.new(type="phone", value=phone)
        if tax_id:
            party.identifiers.new(code=tax_id)
        address, = party.addresses
        address.street, address.city, address.postal_code = street, city, postcode
        address.country = countries[country]
        party.save()
        if not active:
            party.active = False
            party.save()
        parties.append(party)

    Category = Model.get("product.category")
    category = Category(name="Services", accounting=True, account_revenue=accounts["revenue"])
    category.save()
    Uom = Model.get("product.uom")
    unit, = Uom.find([("name", "=", "Unit")])
    Template = Model.get("product.template")
    products = []
    for code, name, price in [("CONS-1", "Consulting hour", "120"), ("SUPP-1", "Support plan", "450")]:
        template = Template(name=name, default_uom=unit, type="service", salable=True,
                            list_price=Decimal(price), account_category=category)
        template.categories.append(Category(category.id))
        template.save()
        product, = template.products
        product.suffix_code = code  # the product's code is the template's prefix + this suffix
        product.save()
        products.append(product)

    term = create_payment_term()
    term.save()
    Journal = Model.get("account.journal")
    cash_journal, = Journal.find([("type", "=", "cash")])
    Method = Model.get("account.invoice.payment.method")
    cash = Method(name="Cash", journal=cash_journal, credit_account=accounts["cash"], debit_account=accounts["cash"])
    cash.save()

    ComplaintType = Model.get("sale.complaint.type")
    IrModel = Model.get("ir.model")
    complaint_type = ComplaintType(name="Sale")
    complaint_type.origin, = IrModel.find([("name", "=", "sale.sale")])
    complaint_type.save()

    Sale = Model.get("sale.sale")
    Complaint = Model.get("sale.complaint")
    active = [p for p in parties if p.active]
    for n, party in enumerate(active):
        sale = Sale(party=party, payment_term=term, invoice_method="order")
        line = sale.lines.new()
        line.product = products[n % 2]
        line.quantity = 1 + n % 3
        if n % 7 == 6:  # left as a draft (quotation not sent)
            sale.save()
            continue
        if n % 11 == 10:
            sale.save()
            sale.click("cancel")
            continue
        sale.click("quote")
        sale.click("confirm")
        invoice, = sale.invoices
        invoice.click("post")
        if n % 3 == 0:
            pay = invoice.click("pay")
            pay.form.payment_method = cash
            pay.execute("choice")
        if n % 5 == 0:
            complaint = Complaint(customer=party, type=complaint_type, origin=sale,
                                  description=f"Late delivery on {sale.number}")
            complaint.save()
            if n % 10 == 0:
                complaint.click("wait")


if __name__ == "__main__":
    main()
