"""Valid-looking, unique strong keys: tax ids, phone numbers, e-mail addresses.

Uniqueness is what makes the ground truth trustworthy (guarantee 2 in `demodata.generate`): a key
generator draws from the caller's random stream and retries on collision against a registry, so two
true customers never share a normalised tax id or e-mail, and share a phone only where the generator
does it on purpose (company switchboards). Registries are sets used for membership only, never
iterated, so their hash order cannot leak into the output.
"""
from __future__ import annotations

import random

from . import vocab

# GB 32100-2015 alphabet: digits and capitals without I, O, Z, S, V.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
# GB 11714 organisation code: 8 characters plus a check character.
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]


def uscc_check_char(first17: str) -> str:
    """Check character of a unified social credit code (GB 32100-2015, weights 3^i mod 31)."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """Check character of the embedded organisation code (GB 11714, weights 3 7 9 10 5 8 4 2, mod 11)."""
    total = sum(int(c, 36) * w for c, w in zip(first8, _ORG_WEIGHTS))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def de_vat_check_digit(first8: str) -> str:
    """German USt-IdNr check digit (ISO 7064 MOD 11,10)."""
    product = 10
    for digit in first8:
        total = (int(digit) + product) % 10 or 10
        product = (2 * total) % 11
    return str((11 - product) % 10)


class KeyFactory:
    """Draws strong keys from one random stream and guarantees they are globally unique."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._taken: set[str] = set()

    def _claim(self, value: str) -> bool:
        if value in self._taken:
            return False
        self._taken.add(value)
        return True

    def uscc(self, division_code: str) -> str:
        """An 18-character USCC for a company registered in the given administrative division."""
        rng = self.rng
        while True:
            if rng.random() < 0.6:  # post-2015 registrations: organisation code starts with MA
                body = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6))
            else:
                body = "".join(rng.choice("0123456789") for _ in range(8))
            org = body + org_code_check_char(body)
            first17 = "91" + division_code + org
            code = first17 + uscc_check_char(first17)
            if self._claim(code):
                return code

    def eu_vat(self, country: str) -> str:
        """A German or British VAT number with a valid check digit, e.g. DE123456788."""
        rng = self.rng
        while True:
            if country == "DE":
                first8 = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(7))
                code = "DE" + first8 + de_vat_check_digit(first8)
            else:
                digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(6)]
                weighted = sum(d * w for d, w in zip(digits, range(8, 1, -1)))
                code = "GB" + "".join(map(str, digits)) + f"{(-weighted) % 97:02d}"
            if self._claim(code):
                return code

    def cn_mobile(self) -> str:
        """A Chinese mobile number in E.164, e.g. +8613800138000."""
        while True:
            number = "+86" + self.rng.choice(vocab.CN_MOBILE_PREFIXES) + f"{self.rng.randint(0, 99_999_999):08d}"
            if self._claim(number):
                return number

    def cn_landline(self, area_code: str) -> str:
        """A Chinese landline (company switchboard) in E.164: +86, area code, 8 local digits."""
        while True:
            number = f"+86{area_code}{self.rng.randint(2, 8)}{self.rng.randint(0, 9_999_999):07d}"
            if self._claim(number):
                return number

    def western_phone(self, country: str, area_code: str) -> str:
        """A German, US or British number in E.164 (10 national digits: area code + local number)."""
        cc = vocab.WESTERN[country]["phone_cc"]
        local_len = 10 - len(area_code)
        while True:
            local = str(self.rng.randint(2, 9)) + f"{self.rng.randint(0, 10 ** (local_len - 1) - 1):0{local_len - 1}d}"
            number = f"+{cc}{area_code}{local}"
            if self._claim(number):
                return number

    def raw(self, value: str) -> str:
        """Claim an arbitrary (possibly malformed) address, suffixing a digit before its '@' if taken."""
        head, sep, tail = value.partition("@")
        candidate, n = value, 1
        while not self._claim(candidate):
            n += 1
            candidate = f"{head}{n}{sep}{tail}"
        return candidate

    def email(self, local: str, domain: str) -> str:
        """`local@domain`, made unique by a numeric suffix on the local part when taken."""
        candidate, n = f"{local}@{domain}", 1
        while not self._claim(candidate):
            n += 1
            candidate = f"{local}{n}@{domain}"
        return candidate
