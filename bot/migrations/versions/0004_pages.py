"""pages updated in place: the Slack messages of each page, and who each level tried

Revision ID: 0004_pages
Revises: 0002
Create Date: 2026-11-30 10:30:00
"""

import sqlalchemy as sa
from alembic import op

import bot.db.types

revision = '0004_pages'
down_revision = '0003_api'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('page_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=48), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('ts', sa.String(length=32), nullable=True),
    sa.Column('posted_at', bot.db.types.UTCDateTime(), nullable=True),
    sa.Column('shown', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['page_id'], ['pages.id'], ),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('page_id', 'key')
    )
    with op.batch_alter_table('page_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_page_messages_page_id'), ['page_id'], unique=False)
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('levels', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('step_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_why', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_column('withdrawn_why')
        batch_op.drop_column('step_id')
        batch_op.drop_column('levels')
    with op.batch_alter_table('page_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_page_messages_page_id'))
    op.drop_table('page_messages')
