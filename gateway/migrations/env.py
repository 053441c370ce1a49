"""Alembic environment: the URL comes from the caller (`xyd db upgrade`)."""

from __future__ import annotations

from alembic import context

from gateway.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds tables.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
