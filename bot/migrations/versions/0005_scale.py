"""scale: outbox priorities (pages and legal clocks are claimed first)

Revision ID: 0005_scale
Revises: 0002
Create Date: 2026-11-30 10:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005_scale'
down_revision = '0004_pages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.SmallInteger(), server_default='1', nullable=False))
        batch_op.create_index('ix_tasks_claim', ['state', 'priority', 'not_before'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_claim')
        batch_op.drop_column('priority')
