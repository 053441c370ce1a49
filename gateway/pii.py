"""Personal data: keyed hashes for identifiers, masks for display.

A resident ID number or a person's name is never stored, logged or shown in
clear. The keyed hash lets the gateway recognise the same person behind
several enterprises without being able to recover who it is.
"""

from __future__ import annotations

import hashlib
import hmac


def keyed_hash(key: bytes, kind: str, value: str, *, exact: bool = False) -> str:
    """HMAC-SHA256 of a normalised identifier, domain-separated by `kind`; `exact`
    hashes the value as given (an identity provider's subject is case-sensitive)."""
    message = f"{kind}:{value if exact else value.strip().upper()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mask_name(name: str) -> str:
    """张三 → 张*, 张三丰 → 张*丰, 欧阳娜娜 → 欧**娜; Latin names keep their first letter."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_number(number: str) -> str:
    """An identifier (ID, passport or phone number) shown by its last four characters only."""
    number = number.strip()
    return "*" * max(len(number) - 4, 1) + number[-4:] if len(number) > 4 else "*" * len(number)
