"""Recording decisions from the request path: committed before the answer leaves."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.audit.chain import Appended, AuditEvent, CommittedAppends, append_many
from gateway.audit.kept import KeptReport, StoredCuts
from gateway.audit.sealer import Sealer
from gateway.batching import Coalescer
from gateway.errors import DependencyUnavailable
from gateway.keys.ring import KeyRingHolder
from gateway.keys.store import KeyError_, LoadedKey
from gateway.state import state_of

log = logging.getLogger("xyd.audit")


class AuditUnavailable(DependencyUnavailable):
    """The trail cannot be written: nothing is disclosed (the same 503 problem)."""


def route_of(request: Request) -> str:
    """`METHOD /template`: how audit entries and config/rates.yaml name a route."""
    scope = request.scope
    route = scope.get("route")
    return f"{scope['method']} {getattr(route, 'path', None) or scope['path']}"


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class AuditWriter:
    """Group commit: the entries of every request in flight go into one transaction.

    A request's entry is acknowledged only once its batch has committed, so
    the rule "no answer before its audit entry is durable" holds; under load
    the head row's lock is taken once per batch instead of once per request.
    A report kept with its entry (`AuditEvent.kept`) commits with it. The
    `sealer` hears of each batch's head and checkpoints (signs the head, exports
    to the witness, off the request path); without one nothing is exported.
    """

    def __init__(
        self,
        engine: Engine,
        keys: KeyRingHolder,
        *,
        checkpoint_every: int = 100,
        sealer: Sealer | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.every = checkpoint_every
        self.sealer = sealer
        self.appends = CommittedAppends(engine)
        self._batches: Coalescer[AuditEvent, int] = Coalescer(self._write)
        self._cuts = StoredCuts()

    async def append(self, event: AuditEvent) -> int:
        return await self._batches.submit(event)

    async def signer(self) -> LoadedKey:
        """The key checkpoints are signed with now (KeyError_ when there is none)."""
        return (await self.keys.current()).signing_key("audit", datetime.now(UTC))

    async def pinned_signer(self) -> LoadedKey:
        """The signer for checkpoints that a records batch writes in its own transaction,
        pinned first so `xyd audit verify` trusts them."""
        signer = await self.signer()
        if self.sealer is not None:
            self.sealer.pin(signer)
        return signer

    async def _write(self, events: list[AuditEvent]) -> list[int]:
        signer = await self.signer()
        cuts = self._cuts.unknown(event.kept for event in events if event.kept is not None)
        every, sealer = self.every, self.sealer
        if sealer is not None:
            sealer.pin(signer)  # a set lookup, but for a key's first batch
        done: Appended = await self.appends.append(
            events, signer=signer, checkpoint_every=every, cuts=cuts
        )
        self._cuts.stored(cuts)
        if sealer is not None:
            sealer.wrote(done.entries[-1], done.checkpoints)
        return done.seqs

    async def append_in(self, conn: AsyncConnection, event: AuditEvent) -> int:
        """Append `event` in `conn`'s transaction: it commits with the change it
        records, or neither does. The head row's lock is then held until that
        commit, so call this last, just before the transaction ends."""
        signer = await self.pinned_signer()
        every = self.every
        seqs: list[int] = await conn.run_sync(
            lambda sync: append_many(sync, [event], signer=signer, checkpoint_every=every)
        )
        return seqs[0]

    async def close(self) -> None:
        await self.appends.close()


async def record(request: Request, event: AuditEvent) -> int:
    """Append `event`, committed; 503 if that is not possible.

    The caller sends nothing protected until this returns: no audit, no answer.
    """
    writer = state_of(request).audit
    try:
        return await writer.append(event)
    except (SQLAlchemyError, OSError, KeyError_) as exc:
        log.error("audit write failed; refusing the request", exc_info=True)
        raise AuditUnavailable("the audit trail cannot be written; nothing was disclosed") from exc


async def record_with(request: Request, conn: AsyncConnection, event: AuditEvent) -> int:
    """Append `event` in the transaction of the write it records (`conn`), so the
    state change and its entry commit together or not at all; 503 if it cannot be
    written, which rolls that transaction back."""
    return await record_in(state_of(request).audit, conn, event)


async def record_in(writer: AuditWriter, conn: AsyncConnection, event: AuditEvent) -> int:
    """`record_with` for a caller holding the writer rather than a request (a
    service the consent page calls)."""
    try:
        return await writer.append_in(conn, event)
    except (SQLAlchemyError, OSError, KeyError_) as exc:
        log.error("audit write failed; the change is rolled back", exc_info=True)
        raise AuditUnavailable("the audit trail cannot be written; nothing was changed") from exc


def allowed(
    request: Request,
    client_id: str,
    body: bytes,
    *,
    reason: str | None = None,
    credit_code: str | None = None,
    consent_id: str | None = None,
    purpose: str | None = None,
    kept: KeptReport | None = None,
) -> AuditEvent:
    """The entry for an allowed answer on this route, `body` being exactly what is sent
    (and, for a report, what is kept to send it again)."""
    return AuditEvent(
        client_id=client_id,
        route=route_of(request),
        decision="allow",
        reason=reason,
        credit_code=credit_code,
        consent_id=consent_id,
        purpose=purpose,
        response_sha256=digest(body),
        kept=kept,
    )


async def record_allowed(
    request: Request,
    client_id: str,
    body: bytes,
    *,
    reason: str | None = None,
    credit_code: str | None = None,
    consent_id: str | None = None,
    purpose: str | None = None,
    kept: KeptReport | None = None,
) -> int:
    """`allowed(...)`, committed before the answer is sent."""
    event = allowed(
        request, client_id, body, reason=reason, credit_code=credit_code,
        consent_id=consent_id, purpose=purpose, kept=kept,
    )  # fmt: skip
    return await record(request, event)


async def record_error(
    request: Request,
    client_id: str,
    reason: str,
    *,
    credit_code: str | None = None,
    consent_id: str | None = None,
) -> int:
    """A request admitted on this route that the gateway failed on (a 5xx): its
    entry, so the enterprise's access log shows it; AuditUnavailable if not."""
    return await record(
        request,
        AuditEvent(
            client_id=client_id,
            route=route_of(request),
            decision="error",
            reason=reason,
            credit_code=credit_code,
            consent_id=consent_id,
        ),
    )
