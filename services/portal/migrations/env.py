"""Alembic runs here with the connection :func:`services.portal.db.migrate` hands it."""

from alembic import context

from services.portal.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run the portal's migrations through services.portal.db.migrate (the worker does at start)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
