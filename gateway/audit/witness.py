"""The witness: signed checkpoints exported outside the store as they are made.

Whoever can write the store can rewrite it whole (relink from genesis, wipe,
truncate) and nothing inside it can tell. A witness holds copies of the signed
checkpoints `{seq, head, at}` where the store's owner cannot reach, so `xyd audit
verify --witness` catches any change to entries at or before the last exported
one: the chain's hash at each exported seq must still be the one signed.

Two kinds, one method (`export`):
- `FileWitness`: a JSON-lines file, append-only (O_APPEND, an exclusive lock
  while a record is added), 0600, each line chained to the one before by its
  SHA-256 (`prev`, `hash`), so a line taken out or edited in the middle shows;
  put it on storage the store's owner cannot write (another host's mount, WORM).
- `HttpWitness`: a regulator's endpoint; each checkpoint is POSTed as JSON
  `{seq, head, signed}`; any answer but 2xx is a failure the caller retries.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import httpx
import orjson

from gateway.audit.checkpoints import Checkpoint, signed_claims
from gateway.keys import jose

START = "0" * 64
MAX_LINE_BYTES = 8192


class WitnessError(Exception):
    """The witness cannot be read as written: a line edited, missing or out of
    place, or a checkpoint no pinned key signed."""


class Witness(Protocol):
    def export(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Keep `checkpoints`; return only once they are kept. Raises OSError or
        httpx.HTTPError when they are not (the caller tries again)."""


def open_witness(target: str) -> Witness:
    if target.startswith(("https://", "http://")):
        return HttpWitness(target)
    return FileWitness(Path(target))


class FileWitness:
    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, checkpoints: Sequence[Checkpoint]) -> None:
        if not checkpoints:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # other workers append to the same file
            n, previous = _last(fd)
            lines = []
            for checkpoint in checkpoints:
                n += 1
                record = _record(n, checkpoint, previous)
                previous = str(record["hash"])
                lines.append(orjson.dumps(record) + b"\n")
            os.write(fd, b"".join(lines))
            os.fsync(fd)
        finally:
            os.close(fd)


class HttpWitness:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url, self.timeout_s = url, timeout_s

    def export(self, checkpoints: Sequence[Checkpoint]) -> None:
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False, trust_env=False) as http:
            for checkpoint in checkpoints:
                body = {"seq": checkpoint.seq, "head": checkpoint.head, "signed": checkpoint.signed}
                http.post(self.url, json=body).raise_for_status()


def _record(n: int, checkpoint: Checkpoint, previous: str) -> dict[str, object]:
    record: dict[str, object] = {
        "n": n, "seq": checkpoint.seq, "head": checkpoint.head,
        "signed": checkpoint.signed, "prev": previous,
    }  # fmt: skip
    record["hash"] = _hash(record)
    return record


def _hash(record: dict[str, object]) -> str:
    fields = {k: record.get(k) for k in ("n", "seq", "head", "signed", "prev")}
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _last(fd: int) -> tuple[int, str]:
    """The number and hash of the file's last line (0 and START when empty)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, START
    tail = os.pread(fd, min(size, 2 * MAX_LINE_BYTES), size - min(size, 2 * MAX_LINE_BYTES))
    last = orjson.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    return int(last["n"]), str(last["hash"])


def read(path: Path, keys: dict[str, jose.PublicKey]) -> list[Checkpoint]:
    """Every checkpoint in the witness file, each checked: its line in the file's
    own chain, its signature by a pinned key, its fields as signed."""
    checkpoints, previous = [], START
    with path.open("rb") as lines:
        for n, line in enumerate(lines, start=1):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise WitnessError(f"line {n} is not a record") from exc
            if record.get("n") != n or record.get("prev") != previous:
                raise WitnessError(f"line {n} does not follow the line before it")
            if _hash(record) != record.get("hash"):
                raise WitnessError(f"line {n} does not match its hash")
            try:
                claims = signed_claims(str(record["signed"]), keys)
            except jose.JoseError as exc:
                problem = f"line {n}: checkpoint not signed by a pinned key: {exc}"
                raise WitnessError(problem) from exc
            if claims.get("seq") != record["seq"] or claims.get("head") != record["head"]:
                raise WitnessError(f"line {n} differs from what was signed")
            checkpoints.append(Checkpoint(record["seq"], record["head"], record["signed"]))
            previous = record["hash"]
    return checkpoints
