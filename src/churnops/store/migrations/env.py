"""Alembic environment: runs migrations on the URL given in the Alembic config."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from churnops.store.database import BUSY_SECONDS, create_store_engine
from churnops.store.tables import Base

config = context.config
engine = create_store_engine(
    config.get_main_option("sqlalchemy.url"),
    config.attributes.get("busy_seconds", BUSY_SECONDS),
    poolclass=sa.pool.NullPool,
)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
