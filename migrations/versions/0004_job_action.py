"""job action: the button that made a job, stored (nothing guessed from image sizes)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 23:30:00.000000
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _action_of(kind: str, spec: dict[str, Any], parent_single: bool) -> str | None:
    """The button code an existing derived job came from (codes as in `sojourn.actions` today)."""
    if kind == "reroll":
        return "r"
    if kind == "upscale":
        return "up" if parent_single else "u"
    if kind == "variation":
        if spec.get("action") == "vary_subtle":
            return "vt"
        return "vs" if parent_single else "v"
    if kind == "zoom":
        return "z15" if float(spec.get("zoom", 2.0)) == 1.5 else "z2"
    return None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("action", sa.String(length=8), nullable=True))

    connection = op.get_bind()
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.Uuid()),
        sa.column("kind", sa.String()),
        sa.column("spec", sa.JSON()),
        sa.column("parent_job_id", sa.Uuid()),
        sa.column("action", sa.String()),
    )
    rows = connection.execute(
        sa.select(jobs.c.id, jobs.c.kind, jobs.c.spec, jobs.c.parent_job_id).where(jobs.c.kind != "imagine")
    ).all()
    for job_id, kind, spec, parent_id in rows:
        spec = json.loads(spec) if isinstance(spec, str) else spec
        parent_spec = None
        if parent_id is not None:
            parent_spec = connection.execute(sa.select(jobs.c.spec).where(jobs.c.id == parent_id)).scalar()
            parent_spec = json.loads(parent_spec) if isinstance(parent_spec, str) else parent_spec
        parent_single = bool(parent_spec) and int(parent_spec.get("images", 4)) == 1
        action = _action_of(kind, spec or {}, parent_single)
        if action is not None:
            connection.execute(sa.update(jobs).where(jobs.c.id == job_id).values(action=action))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("action")
