"""Alembic's entry point: run the revisions on the connection that ``alerting.migrations.upgrade`` was
given, inside its transaction (no engine, no ini file, no logging configuration of its own)."""

from alembic import context

from alerting.store_schema import VERSION_TABLE

context.configure(connection=context.config.attributes["connection"], version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
