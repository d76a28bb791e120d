"""wellbeing: the private exposure ledger, breaks and the nudges already sent

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00
"""

import sqlalchemy as sa
from alembic import op

import bot.db.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exposure_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=True),
    sa.Column('items', sa.Integer(), nullable=True),
    sa.Column('at', bot.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('exposure_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_exposure_user_at', ['user_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_exposure_ledger_at'), ['at'], unique=False)

    op.create_table('wellbeing_breaks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('started_at', bot.db.types.UTCDateTime(), nullable=False),
    sa.Column('ends_at', bot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wellbeing_breaks', schema=None) as batch_op:
        batch_op.create_index('ix_breaks_user_ends', ['user_id', 'ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_wellbeing_breaks_started_at'), ['started_at'], unique=False)

    op.create_table('wellbeing_nudges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('sent_at', bot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'kind', 'key')
    )
    with op.batch_alter_table('wellbeing_nudges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wellbeing_nudges_sent_at'), ['sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('wellbeing_nudges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wellbeing_nudges_sent_at'))
    op.drop_table('wellbeing_nudges')
    with op.batch_alter_table('wellbeing_breaks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wellbeing_breaks_started_at'))
        batch_op.drop_index('ix_breaks_user_ends')
    op.drop_table('wellbeing_breaks')
    with op.batch_alter_table('exposure_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exposure_ledger_at'))
        batch_op.drop_index('ix_exposure_user_at')
    op.drop_table('exposure_ledger')
