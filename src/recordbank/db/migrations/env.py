"""Alembic environment: runs on the connection handed in by recordbank.db.session.upgrade."""

from alembic import context

import recordbank.accounts.audit
import recordbank.accounts.models
import recordbank.billing.models
import recordbank.ingest.bucket_model
import recordbank.ingest.http_sources_model
import recordbank.notify.models
import recordbank.usage.models  # noqa: F401 - every table in Base.metadata
from recordbank.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
