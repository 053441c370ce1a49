"""The demo provider's people: `.xyd/demo/enterprise-users.csv`
(`username,password,credit_code,role`, owner-only), a legal representative and
an agent for the first enterprise of each demo profile in the seed's
`enterprises.csv`, and (`repairable-rep`, `repairable-agent`) for the enterprise
whose penalty `repair-sample.json` names, so the repair journey can be walked
as that enterprise. Passwords are made when the file is written and never
committed; the provider keeps only their scrypt hashes."""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import io
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from gateway.identity.clients import hash_secret, secret_matches
from gateway.private_files import private_dir, write_private

ROLES = ("legal_representative", "agent")
_ROLE_SUFFIX = {"legal_representative": "rep", "agent": "agent"}
USERS_FILE = "enterprise-users.csv"
REPAIR_SAMPLE = "repair-sample.json"  # written by the seed (xyd_demo.repairs)


@functools.cache
def dummy_hash() -> str:
    """A hash to check against when there is none (an unknown name), made once."""
    return hash_secret(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class Person:
    """One login: what the ID token says of them, and their password's hash."""

    username: str
    password_hash: str
    credit_code: str
    role: str
    subject: str


class People:
    """The provider's users by name. `check` costs one scrypt whether or not the
    name exists, so neither the answer nor its timing tells which names do."""

    def __init__(self, people: list[Person]) -> None:
        self._by_name = {person.username: person for person in people}
        self._by_subject = {person.subject: person for person in people}

    def check(self, username: str, password: str) -> Person | None:
        person = self._by_name.get(username)
        matched = secret_matches(person.password_hash if person else dummy_hash(), password)
        return person if matched and person is not None else None

    def by_subject(self, subject: str) -> Person | None:
        return self._by_subject.get(subject)


def subject_of(subject_key: bytes, username: str) -> str:
    """A pairwise-looking, stable identifier: the same user keeps it across
    restarts (the key is kept), and it does not reveal the username."""
    return hmac.new(subject_key, b"sub:" + username.encode(), hashlib.sha256).hexdigest()[:32]


def people(rows: list[dict[str, str]], subject_key: bytes) -> People:
    """Hash each row's password now; the plain passwords go no further."""
    return People(
        [
            Person(
                row["username"],
                hash_secret(row["password"]),
                row["credit_code"],
                row["role"],
                subject_of(subject_key, row["username"]),
            )
            for row in rows
        ]
    )


def _samples(demo_dir: Path) -> list[tuple[str, str]]:
    """(profile, credit code): the first enterprise of each profile the seed wrote,
    then the repair sample's enterprise."""
    first: dict[str, str] = {}
    with (demo_dir / "enterprises.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            first.setdefault(row["profile"], row["credit_code"])
    repair_sample = demo_dir / REPAIR_SAMPLE
    if repair_sample.exists():
        first["repairable"] = json.loads(repair_sample.read_text(encoding="utf-8"))["credit_code"]
    return list(first.items())


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def ensure_users(demo_dir: Path) -> list[dict[str, str]]:
    """The users file's rows, written afresh (new passwords) when missing or
    when it names an enterprise the last seed no longer has."""
    path = demo_dir / USERS_FILE
    samples = _samples(demo_dir)
    codes = {code for _, code in samples}
    if path.exists():
        rows = read_rows(path)
        if rows and {row["credit_code"] for row in rows} == codes:
            return rows
    rows = [
        {
            "username": f"{profile.replace('_', '-')}-{_ROLE_SUFFIX[role]}",
            "password": secrets.token_urlsafe(15),
            "credit_code": code,
            "role": role,
        }
        for profile, code in samples
        for role in ROLES
    ]
    text = io.StringIO()
    writer = csv.DictWriter(text, ("username", "password", "credit_code", "role"))
    writer.writeheader()
    writer.writerows(rows)
    private_dir(demo_dir)
    write_private(path, text.getvalue())
    return rows
