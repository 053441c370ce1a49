"""Group commit for pushed messages: concurrent `receive` calls share one transaction.

Each message is still committed before its platform hears "accepted". A
`Coalescer` hands every message that arrived while the previous group was
being written to the next group, which `store_many` writes in one
transaction; each sender waits for its own group's commit. An idle gateway
writes groups of one, as before.

A message that fails inside a group does not fail its neighbours: the group
is written inside a savepoint and, when that fails, each message again in a
savepoint of its own (`store`), so only the failing one gets its error. A
failed commit fails every message of the group: none was acknowledged, and
each sender tells its platform to retry later.
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
        async with self._engine().begin() as conn:
            return await conn.run_sync(store_isolated, events, self.rules)


def store_isolated(
    conn: Connection, events: Sequence[LoanEvent], rules: ConsentRules
) -> list[Stored | BaseException]:
    """Each event's outcome, or the error that only it met, in the caller's transaction."""
    if len(events) == 1:
        return [store(conn, events[0], rules=rules)]
    try:
        with conn.begin_nested():
            return list(store_many(conn, events, rules=rules))
    except Exception:
        log.warning("a group of platform messages failed; storing each alone", exc_info=True)
    results: list[Stored | BaseException] = []
    for event in events:
        try:
            with conn.begin_nested():
                results.append(store(conn, event, rules=rules))
        except Exception as exc:  # this message's own failure: its neighbours go on
            results.append(exc)
    return results
