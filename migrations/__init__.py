"""Alembic migrations, shipped with the package so `sojourn migrate` works from any install."""
