"""Group commit for pushed messages: concurrent `receive` calls share one transaction.

Each message is still committed before its platform hears "accepted". A
`Coalescer` hands every message that arrived while the previous group was
being written to the next group, which `store_many` writes in one
transaction; each sender waits for its own group's commit. An idle gateway
writes groups of one, as before.

A message that fails inside a group does not fail its neighbours: the group's
transaction is rolled back and each of its messages stored again alone, in a
transaction of its own (`store`), so only the failing one gets its error. A
failed commit fails every message of the group: none was acknowledged, and
each sender tells its platform to retry later (a redelivery of one that did
commit after all is then a duplicate, as any redelivery).
(No savepoints: SQLite's driver would let the first one start the
transaction and its release commit it.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.batching import Coalescer
from gateway.loans.events import LoanEvent
from gateway.loans.ledger import Stored, store, store_many
from policies.consent import ConsentRules

log = logging.getLogger("xyd.adapters")

# Messages per transaction at most: a group this size stays well under a second.
MAX_GROUP = 256


class GroupCommit:
    """Stores pushed events in shared transactions; `store` answers one event's outcome."""

    def __init__(
        self, engine: Callable[[], AsyncEngine], rules: ConsentRules, max_group: int = MAX_GROUP
    ) -> None:
        self._engine, self.rules = engine, rules
        self._groups: Coalescer[LoanEvent, Stored] = Coalescer(self._write, max_group)

    async def store(self, event: LoanEvent) -> Stored:
        """The event's outcome once its group has committed. Raises what storing it
        raised (SQLAlchemyError, OSError: the database could not take it), or what
        the commit raised, which every event of the group then gets."""
        return await self._groups.submit(event)

    async def _write(self, events: list[LoanEvent]) -> list[Stored | BaseException]:
        async with self._engine().connect() as conn:
            transaction = await conn.begin()
            try:
                results = await conn.run_sync(_store_group, events, self.rules)
            except Exception:
                await transaction.rollback()
                if len(events) == 1:
                    raise
                log.warning(
                    "a group of platform messages failed; storing each alone", exc_info=True
                )
            else:
                try:
                    await transaction.commit()  # if this fails, every sender hears it
                except BaseException:
                    # In an unknown state (committed or not, broken or not): never reused.
                    await conn.invalidate()
                    raise
                return results
        return [await self._alone(event) for event in events]

    async def _alone(self, event: LoanEvent) -> Stored | BaseException:
        try:
            async with self._engine().begin() as conn:
                return await conn.run_sync(_store_one, event, self.rules)
        except Exception as exc:  # this message's own failure: its neighbours go on
            return exc


def _store_group(
    conn: Connection, events: Sequence[LoanEvent], rules: ConsentRules
) -> list[Stored | BaseException]:
    return list(store_many(conn, events, rules=rules))


def _store_one(conn: Connection, event: LoanEvent, rules: ConsentRules) -> Stored:
    return store(conn, event, rules=rules)
