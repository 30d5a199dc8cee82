"""encryption at rest: names, prompts as sent and inbox payloads become sealed text

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 09:40:00

Reply text, revisions and voice notes already had wide enough columns; their existing rows,
and the rows of the widened columns, are sealed here with the current key.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.encryption import active_key_ring

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEALED = re.compile(rb"^[0-9a-f]{8}:gAAAA")
# (table, primary key, column, stored as bytes)
COLUMNS = [
    ("therapists", "id", "display_name", False),
    ("clients", "id", "display_name", False),
    ("deliveries", "id", "prompt", False),
    ("replies", "id", "text", False),
    ("reply_revisions", "id", "text", False),
    ("voice_notes", "reply_id", "content", True),
    ("inbox", "update_id", "payload", False),
]


def upgrade() -> None:
    connection = op.get_bind()
    # SQLite keeps any length of text in any column (and rebuilding these tables would trip
    # their foreign keys); other databases widen the columns to text.
    if connection.dialect.name != "sqlite":
        for table, column, old in [("therapists", "display_name", sa.String(200)),
                                   ("clients", "display_name", sa.String(200)),
                                   ("deliveries", "prompt", sa.JSON()),
                                   ("inbox", "payload", sa.JSON())]:
            op.alter_column(table, column, existing_type=old, type_=sa.Text(),
                            postgresql_using=f"{column}::text")

    for table, key, column, as_bytes in COLUMNS:
        rows = connection.execute(sa.text(
            f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL")).all()  # noqa: S608
        for row_key, value in rows:
            raw = bytes(value) if as_bytes else str(value).encode("utf-8")
            if SEALED.match(raw):
                continue
            sealed = active_key_ring().seal(raw)
            connection.execute(
                sa.text(f"UPDATE {table} SET {column} = :value WHERE {key} = :key"),  # noqa: S608
                {"value": sealed if as_bytes else sealed.decode("ascii"), "key": row_key})


def downgrade() -> None:
    raise NotImplementedError("sealed data is not unsealed by a downgrade; restore a backup instead")
