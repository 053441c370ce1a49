"""SQL runs in a feature's repository.py (or a `<what>_repository.py` beside it, when
one feature keeps two), or in a module listed here with why.

A call counts as running SQL when it is `.exec_driver_sql(...)`,
`.executemany(...)` or `.execute(...)` given a statement (Redis pipelines'
`execute()` takes none). A module listed here that no longer runs SQL, or no
longer exists, is a failure too: take it off the list.
"""

from __future__ import annotations

import ast
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[1] / "gateway"

# Packages whose every module may run SQL.
PACKAGES = {
    "store": "the store itself: tables, migrations runner, bulk COPY shared by repositories",
    "migrations": "Alembic migrations run DDL and data fixes by nature",
}
# Single modules, until their own step gives them a repository.
MODULES = {
    "db.py": "engine set-up: SQLite's pragmas on each new connection",
    "health/service.py": "readiness is a `SELECT 1` round trip: the query is the check",
    "idempotency.py": "the Idempotency-Key store, one cross-cutting module of SQL alone",
    "outbox.py": "the outbox table's own store, one cross-cutting module of SQL alone",
    "positions.py": "background readers' positions, one cross-cutting module of SQL alone",
    "leases.py": "the leases table's own store, one cross-cutting module of SQL alone",
    "audit/chain.py": "the chain's repository: linking and the hot audit_append statement "
    "stay beside the hashing they must match",
    "audit/kept.py": "kept reports' repository: its PostgreSQL statement is folded into "
    "the chain's append (one round trip)",
    "records/service.py": "records ingestion: the ingest run's row around repository batches",
    "records/personal.py": "records ingestion: sealed personal fields recovered, re-encrypted",
    "keys/store.py": "the key store: signing keys read and rotated, at the bottom layer",
}


def _runs_sql(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in ("exec_driver_sql", "executemany") or (name == "execute" and node.args):
                lines.append(node.lineno)
    return sorted(lines)


def _is_repository(module: str) -> bool:
    name = Path(module).name
    return name == "repository.py" or name.endswith("_repository.py")


def _sql_modules() -> dict[str, list[int]]:
    found = {}
    for path in GATEWAY.rglob("*.py"):
        lines = _runs_sql(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            found[path.relative_to(GATEWAY).as_posix()] = lines
    return found


def test_sql_runs_only_in_repositories_and_the_listed_modules() -> None:
    homeless = {
        module: lines
        for module, lines in _sql_modules().items()
        if not _is_repository(module)
        and module.split("/")[0] not in PACKAGES
        and module not in MODULES
    }
    assert not homeless, f"SQL outside a repository.py (module: lines): {homeless}"


def test_every_listed_module_still_runs_sql() -> None:
    running = _sql_modules()
    stale = sorted(module for module in MODULES if module not in running)
    assert not stale, f"listed but running no SQL (take them off MODULES): {stale}"
    missing = sorted(name for name in PACKAGES if not (GATEWAY / name).is_dir())
    assert not missing, f"listed packages that no longer exist: {missing}"


def test_the_scan_sees_sql_and_not_redis() -> None:
    sql = ast.parse("conn.execute(select(t))\nconn.exec_driver_sql('SELECT 1')")
    redis = ast.parse("await pipe.execute()\nawait pipe.execute(raise_on_error=False)")
    assert _runs_sql(sql) == [1, 2]
    assert _runs_sql(redis) == []
