"""Database models and sessions (SQLAlchemy 2.0 async)."""
