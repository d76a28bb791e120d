"""api: tokens, idempotency keys, evidence and the hashes open incidents hold; incidents.external_id

Revision ID: 0003_api
Revises: 0002
Create Date: 2026-11-30 10:40:00
"""

import sqlalchemy as sa
from alembic import op

import bot.db.types

revision = '0003_api'
down_revision = '0002'  # the wellbeing migration (file 0002_wellbeing.py)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=28), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', bot.db.types.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', bot.db.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('api_idempotency',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=28), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('body', sa.JSON(), nullable=True),
    sa.Column('created_at', bot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token', 'key')
    )
    with op.batch_alter_table('api_idempotency', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_idempotency_created_at'), ['created_at'], unique=False)

    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('hashes', sa.JSON(), nullable=False),
    sa.Column('content_id', sa.String(length=256), nullable=True),
    sa.Column('source', sa.String(length=128), nullable=True),
    sa.Column('sighting', sa.Boolean(), nullable=False),
    sa.Column('added_by', sa.String(length=32), nullable=False),
    sa.Column('at', bot.db.types.UTCDateTime(), nullable=False),
    sa.Column('summarised_at', bot.db.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_incident_id'), ['incident_id'], unique=False)

    op.create_table('evidence_hashes',
    sa.Column('playbook_id', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=600), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('playbook_id', 'hash')
    )
    with op.batch_alter_table('evidence_hashes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_hashes_incident_id'), ['incident_id'], unique=False)

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=128), nullable=True))
        batch_op.create_index(batch_op.f('ix_incidents_external_id'), ['external_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_external_id'))
        batch_op.drop_column('external_id')
    with op.batch_alter_table('evidence_hashes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_hashes_incident_id'))
    op.drop_table('evidence_hashes')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_incident_id'))
    op.drop_table('evidence')
    with op.batch_alter_table('api_idempotency', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_idempotency_created_at'))
    op.drop_table('api_idempotency')
    op.drop_table('api_tokens')
