"""consent versions: the version in force per client, and the version they were last asked

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 10:30:00

Existing clients get the version they last agreed to; as that is older than the current one,
each is asked to agree to the updated text before their next prompt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_version', sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column('consent_asked_version', sa.String(length=48), nullable=True))
    op.execute(
        "UPDATE clients SET consent_version = (SELECT version FROM consents "
        "WHERE consents.client_id = clients.id AND consents.revoked_at IS NULL "
        "ORDER BY given_at DESC LIMIT 1)")


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('consent_asked_version')
        batch_op.drop_column('consent_version')
