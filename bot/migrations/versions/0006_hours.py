"""hours: an index for reading a person's activity on the timeline (responder hours)

`/incident wellbeing` and `safeguard wellbeing` read the events a person acted in over a day, a
week or a month (bot/hours.py); without this index each read scans the whole timeline.

Revision ID: 0006_hours
Revises: 0002
Create Date: 2026-11-30 10:45:00
"""

from alembic import op

revision = '0006_hours'
down_revision = '0005_scale'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('timeline_events', schema=None) as batch_op:
        batch_op.create_index('ix_timeline_actor_at', ['actor', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('timeline_events', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_actor_at')
