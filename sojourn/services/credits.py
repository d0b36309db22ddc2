"""The credit ledger: every movement is an append-only entry with an idempotency key.

`users.balance` is a cache of the ledger's sum, changed in the same transaction as each entry.
A submission locks the user's row first (`lock_accounts`, which serialises that user's submissions
across processes), checks the balance it read, then writes the holds and the new balance
(`hold_for_jobs`; for a batch of submissions, every user's in the same two statements).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import LedgerEntry, LedgerKind, User
from sojourn.clock import utcnow
from sojourn.errors import InsufficientCredits


def _insert_ignoring_duplicates(session: AsyncSession):  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


@dataclass(frozen=True)
class Account:
    """A user's row as a submission needs it, read under the row's lock (`lock_accounts`)."""

    user_id: int
    balance: int
    daily_grant_on: dt.date | None
    defaults: dict[str, Any]
    prefer_options: dict[str, str]
    prefer_suffix: str

    def daily_grant_due(self, amount: int, today: dt.date) -> int:
        """Today's free credits if this account has not had them yet, else 0."""
        if amount <= 0 or (self.daily_grant_on is not None and self.daily_grant_on >= today):
            return 0
        return amount

    def require(self, needed: int, daily_free: int, today: dt.date) -> None:
        """Raise `InsufficientCredits` unless the balance, with today's credits if due, covers `needed`."""
        available = self.balance + self.daily_grant_due(daily_free, today)
        if available < needed:
            raise InsufficientCredits(needed=needed, balance=available)

    def after_holds(self, held: int, daily_free: int, today: dt.date) -> Account:
        """This account once `held` credits are held, with today's credits granted first if due."""
        if not (daily := self.daily_grant_due(daily_free, today)) and not held:
            return self
        return replace(
            self,
            balance=self.balance + daily - held,
            daily_grant_on=today if daily else self.daily_grant_on,
        )


_ACCOUNT_COLUMNS = (
    User.balance,
    User.daily_grant_on,
    User.defaults,
    User.prefer_options,
    User.prefer_suffix,
)


async def lock_accounts(session: AsyncSession, user_ids: Collection[int]) -> dict[int, Account]:
    """The users' rows (created on first sight), locked until the transaction ends.

    One round trip when every user is known. The lock serialises each user's submissions, bans and
    grants across processes: whatever is read after it (active jobs, bans) stays true until the
    commit. Rows are locked in id order, so two batches sharing users cannot deadlock.
    """
    ids = sorted(set(user_ids))
    accounts = await _lock_rows(session, ids)
    missing = [user_id for user_id in ids if user_id not in accounts]
    if missing:
        insert_users = _insert_ignoring_duplicates(session)(User.table()).on_conflict_do_nothing()
        await session.execute(
            insert_users, [{"id": user_id, "defaults": {}, "balance": 0} for user_id in missing]
        )
        accounts.update(await _lock_rows(session, missing))
    return accounts


async def _lock_rows(session: AsyncSession, ids: list[int]) -> dict[int, Account]:
    locked = select(User.id, *_ACCOUNT_COLUMNS).where(User.id.in_(ids)).order_by(User.id).with_for_update()
    return {
        row.id: Account(
            user_id=row.id,
            balance=row.balance,
            daily_grant_on=row.daily_grant_on,
            defaults=row.defaults or {},
            prefer_options=row.prefer_options or {},
            prefer_suffix=row.prefer_suffix or "",
        )
        for row in await session.execute(locked)
    }


async def hold_for_jobs(
    session: AsyncSession,
    holds: Sequence[tuple[Account, Sequence[tuple[uuid.UUID, int]]]],
    *,
    daily_free: int,
    today: dt.date,
) -> None:
    """For each locked account, grant today's free credits if due, then hold each of its jobs' cost.

    Each account must be locked in this transaction (`lock_accounts`) and appear once, and the jobs
    inserted. Raises `InsufficientCredits` (the caller's transaction rolls back: nothing granted,
    nothing held). Two statements however many accounts and jobs: the entries, and the balances.
    """
    now = utcnow()
    entries: list[dict[str, Any]] = []

    def entry(user_id: int, amount: int, kind: LedgerKind, key: str, job_id: uuid.UUID | None) -> None:
        entries.append(
            {
                "user_id": user_id,
                "amount": amount,
                "kind": kind,
                "idempotency_key": key,
                "job_id": job_id,
                "note": "",
                "created_at": now,
            }
        )

    planned: list[tuple[Account, int, dt.date | None]] = []  # each account, its cost, its grant day after
    for account, jobs in holds:
        needed = sum(cost for _, cost in jobs)
        account.require(needed, daily_free, today)
        # The day's grant first (the ledger reads in order), keyed by the day; each hold by its new job.
        if daily := account.daily_grant_due(daily_free, today):
            entry(
                account.user_id, daily, LedgerKind.DAILY, f"daily:{account.user_id}:{today.isoformat()}", None
            )
        for job_id, cost in jobs:
            entry(account.user_id, -cost, LedgerKind.HOLD, f"hold:{job_id}", job_id)
        planned.append((account, needed, account.after_holds(needed, daily_free, today).daily_grant_on))
    if not entries:
        return
    ledger, users = LedgerEntry.table(), User.table()
    # The rows go in one executemany: its statement is compiled once and cached, where SQLAlchemy
    # never caches a multi-row VALUES (compiling one cost more than a round trip).
    written = await session.execute(
        _insert_ignoring_duplicates(session)(ledger)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(ledger.c.user_id, ledger.c.amount),
        entries,
    )
    moved: dict[int, int] = {}
    for user_id, amount in written:
        moved[user_id] = moved.get(user_id, 0) + amount
    balances = []
    for account, needed, grant_on in planned:
        change = moved.get(account.user_id, 0)
        if account.balance + change < 0:  # the day's grant was already in the ledger: only the holds moved
            raise InsufficientCredits(needed=needed, balance=account.balance)
        balances.append({"user": account.user_id, "moved": change, "grant_on": grant_on})
    await session.execute(
        update(users)
        .where(users.c.id == bindparam("user"))
        .values(balance=users.c.balance + bindparam("moved"), daily_grant_on=bindparam("grant_on")),
        balances,
    )


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
) -> bool:
    """Append one ledger entry and move the cached balance; False if `key` was already used."""
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
    if amount:
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


async def ledger_sum(session: AsyncSession, user_id: int) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.user_id == user_id)
    )
    return int(total or 0)


async def balance_of(session: AsyncSession, user_id: int) -> int:
    user = await session.get(User, user_id)
    return user.balance if user else 0
