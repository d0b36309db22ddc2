"""The credit ledger: every movement is an append-only entry with an idempotency key.

`users.balance` is a cache of the ledger's sum, changed in the same transaction as each
entry, so the balance check and the hold are one atomic conditional UPDATE (which also
locks the user's row on Postgres and serialises that user's concurrent submissions).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import LedgerEntry, LedgerKind, User
from sojourn.clock import utcnow
from sojourn.errors import InsufficientCredits


def _insert_ignoring_duplicates(session: AsyncSession):  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def ensure_user(session: AsyncSession, user_id: int) -> User:
    """The user's row, created on first sight (concurrent first sights are fine)."""
    user = await session.get(User, user_id)
    if user is not None:
        return user
    insert = _insert_ignoring_duplicates(session)
    await session.execute(insert(User).values(id=user_id, defaults={}, balance=0).on_conflict_do_nothing())
    user = await session.get(User, user_id)
    assert user is not None
    return user


async def record_entry(
    session: AsyncSession,
    *,
    user_id: int,
    amount: int,
    kind: LedgerKind,
    key: str,
    job_id: uuid.UUID | None = None,
    note: str = "",
    move_balance: bool = True,
) -> bool:
    """Append one ledger entry and move the cached balance; False if `key` was already used.

    `move_balance=False` is for hold entries whose total `take_hold` already subtracted.
    """
    insert = _insert_ignoring_duplicates(session)
    result = await session.execute(
        insert(LedgerEntry)
        .values(
            user_id=user_id,
            amount=amount,
            kind=kind,
            idempotency_key=key,
            job_id=job_id,
            note=note,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(LedgerEntry.id)
    )
    if result.scalar_one_or_none() is None:
        return False
    if amount and move_balance:
        await session.execute(update(User).where(User.id == user_id).values(balance=User.balance + amount))
    return True


async def grant(session: AsyncSession, user_id: int, amount: int, *, key: str, note: str = "") -> bool:
    """An admin grant (or a negative correction). Reusing `key` grants nothing more."""
    await ensure_user(session, user_id)
    return await record_entry(
        session, user_id=user_id, amount=amount, kind=LedgerKind.GRANT, key=key, note=note
    )


async def grant_daily_if_due(session: AsyncSession, user_id: int, amount: int, today: dt.date) -> bool:
    """Top the user up with today's free credits once per UTC day."""
    if amount <= 0:
        return False
    claimed = await session.execute(
        update(User)
        .where(User.id == user_id)
        .where((User.daily_grant_on.is_(None)) | (User.daily_grant_on < today))
        .values(daily_grant_on=today)
        .returning(User.id)
    )
    if claimed.scalar_one_or_none() is None:
        return False
    return await record_entry(
        session,
        user_id=user_id,
        amount=amount,
        kind=LedgerKind.DAILY,
        key=f"daily:{user_id}:{today.isoformat()}",
    )


async def take_hold(session: AsyncSession, user_id: int, amount: int) -> int:
    """Reserve `amount` credits or raise; returns the new balance. Ledger entries follow per job."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id, User.balance >= amount)
        .values(balance=User.balance - amount)
        .returning(User.balance)
    )
    balance = result.scalar_one_or_none()
    if balance is not None:
        return balance
    user = await session.get(User, user_id)
    raise InsufficientCredits(needed=amount, balance=user.balance if user else 0)


async def ledger_sum(session: AsyncSession, user_id: int) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.user_id == user_id)
    )
    return int(total or 0)


async def balance_of(session: AsyncSession, user_id: int) -> int:
    user = await session.get(User, user_id)
    return user.balance if user else 0
