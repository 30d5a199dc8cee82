"""erasure: a record that it happened, and alerts that outlive the client they were about

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.types import UTCDateTime

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('erasures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=False),
    sa.Column('former_client_id', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.String(length=16), nullable=False),
    sa.Column('rows_deleted', sa.Integer(), nullable=False),
    sa.Column('erased_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], name=op.f('fk_erasures_therapist_id_therapists')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasures'))
    )
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasures_therapist_id'), ['therapist_id'], unique=False)

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erase_nonce', sa.String(length=32), nullable=True))

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.alter_column('client_id', existing_type=sa.INTEGER(), nullable=True)
        batch_op.drop_constraint('fk_alerts_client_id_clients', type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_alerts_client_id_clients'), 'clients', ['client_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_alerts_client_id_clients'), type_='foreignkey')
        batch_op.create_foreign_key('fk_alerts_client_id_clients', 'clients', ['client_id'], ['id'], ondelete='CASCADE')
        batch_op.alter_column('client_id', existing_type=sa.INTEGER(), nullable=False)

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('erase_nonce')

    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasures_therapist_id'))

    op.drop_table('erasures')
