"""ISO 4217 currency codes accepted by the quality gates (a fixed list, no network look-up).

`ISO_4217_ACTIVE` is the list of active alphabetic codes of ISO 4217 (list one, as maintained by SIX
for the ISO 4217 maintenance agency) after the amendments up to 2025: national currencies, fund
codes, precious metals, bond-market units, special drawing rights, the test code XTS and XXX
("no currency"). Notable recent changes reflected here:

* XCG (Caribbean guilder) replaced ANG (Netherlands Antillean guilder) in 2025;
* ZWG (Zimbabwe Gold) replaced ZWL in 2024;
* SLE replaced SLL (Sierra Leone, redenomination), VED and VES are both listed for Venezuela;
* HRK was withdrawn when Croatia adopted the euro (2023).

BGN (Bulgarian lev) is still listed: Bulgaria adopted the euro on 1 January 2026, but documents
dated before then legitimately carry BGN. Review this list when ISO publishes an amendment.

`ACCEPTED_CURRENCIES` is what the gates accept for money: the active codes without XTS (reserved
for testing) and XXX (transactions with no currency), which must never appear on a business document.
"""
from __future__ import annotations

ISO_4217_ACTIVE: frozenset[str] = frozenset("""
AED AFN ALL AMD AOA ARS AUD AWG AZN
BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK
DJF DKK DOP DZD
EGP ERN ETB EUR
FJD FKP
GBP GEL GHS GIP GMD GNF GTQ GYD
HKD HNL HTG HUF
IDR ILS INR IQD IRR ISK
JMD JOD JPY
KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD
MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN
NAD NGN NIO NOK NPR NZD
OMR
PAB PEN PGK PHP PKR PLN PYG
QAR
RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD USN UYI UYU UYW UZS
VED VES VND VUV
WST
XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX
YER
ZAR ZMW ZWG
""".split())

# Codes withdrawn recently enough to still turn up in ERP data; NOT accepted by the gates (listed so
# that a reviewer sees they were left out on purpose).
RECENTLY_WITHDRAWN: frozenset[str] = frozenset({"ANG", "CUC", "HRK", "MRO", "SLL", "STD", "VEF", "ZWL"})

NOT_MONEY: frozenset[str] = frozenset({"XTS", "XXX"})

ACCEPTED_CURRENCIES: frozenset[str] = ISO_4217_ACTIVE - NOT_MONEY

assert not (ISO_4217_ACTIVE & RECENTLY_WITHDRAWN)
assert all(len(c) == 3 and c.isalpha() and c.isupper() for c in ISO_4217_ACTIVE)
