"""The dashboard's password policy, and scrypt kept off the event loop.

A password is refused (`InvalidValue`, 422) when it is shorter than 12 or
longer than 1024 characters, all whitespace, digits and punctuation alone,
contains the user name (any case), or is a commonly used password: one of
the words below once lower-cased, its spaces dropped and the digits and
punctuation at its ends taken off (so `password1234`, `Qwerty!!!!!!` and
`Pass Word 2024` are all refused). The list is small on purpose: the length
rule does most of the work; it stops the guesses an attacker tries first.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import string

from gateway.errors import InvalidValue
from gateway.identity.clients import hash_secret, secret_matches
from gateway.metrics import DASHBOARD_PASSWORD_HASHES

MIN_CHARS = 12
MAX_CHARS = 1024

COMMON = frozenset(
    [
        "password",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword",
        "qwerty",
        "qwertyuiop",
        "qwertz",
        "azerty",
        "asdfghjkl",
        "zxcvbnm",
        "qaz2wsx3edc",
        "qazwsxedc",
        "qazwsxedcrfv",
        "zaq1xsw2",
        "iloveyou",
        "letmein",
        "welcome",
        "admin",
        "administrator",
        "root",
        "changeme",
        "default",
        "secret",
        "monkey",
        "dragon",
        "football",
        "baseball",
        "sunshine",
        "princess",
        "trustno",
        "superman",
        "batman",
        "master",
        "whatever",
        "abc",
        "abcdef",
        "abcdefghijkl",
        "starwars",
        "shadow",
        "computer",
        "internet",
        "freedom",
        "woaini",
        "aini",
        "xinyidai",
        "xyd",
        "xydgateway",
        "dashboard",
        "officer",
        "riskofficer",
        "auditor",
        "correcthorsebatterystaple",
    ]
)
_ENDS = string.digits + string.punctuation + string.whitespace


def check(name: str, password: str) -> None:
    """Raise InvalidValue naming the rule a new password breaks."""
    if not MIN_CHARS <= len(password) <= MAX_CHARS:
        raise InvalidValue(f"a password needs {MIN_CHARS} to {MAX_CHARS} characters")
    if not password.strip():
        raise InvalidValue("a password cannot be all whitespace")
    lowered = password.lower()
    if name and name.lower() in lowered:
        raise InvalidValue("a password cannot contain the user name")
    squeezed = "".join(lowered.split())
    core = squeezed.strip(_ENDS)
    if not core:
        raise InvalidValue("a password needs more than digits and punctuation")
    if {lowered, squeezed, core} & COMMON:
        raise InvalidValue("that password is one of the most commonly used: choose another")


def new_password() -> str:
    return secrets.token_urlsafe(18)


@functools.cache
def _dummy_hash() -> str:
    return hash_secret(secrets.token_urlsafe(16))


def matches(stored: str | None, given: str) -> bool:
    """One scrypt whether or not there is a stored hash (None: an unknown or
    disabled account), so timing does not tell which accounts exist."""
    DASHBOARD_PASSWORD_HASHES.inc()
    found = secret_matches(stored or _dummy_hash(), given)
    return found and stored is not None


class Hasher:
    """scrypt in worker threads, at most `threads` at once: a burst of logins
    waits its turn here, never on the event loop the API is served from."""

    def __init__(self, threads: int) -> None:
        self._slots = asyncio.Semaphore(threads)
        _dummy_hash()  # made now, not by the first unknown name (it would take twice as long)

    async def matches(self, stored: str | None, given: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(matches, stored, given)
