"""`sojourn audit` on real databases, Postgres and SQLite: a clean database passes, and each
corruption (made with plain SQL, one at a time) is reported under exactly its rule, by the library
and by the command's exit code; and the audit writes nothing.

One scenario (jobs in every state, made by the services) is built once per backend into a
template; each test audits a fresh copy of it (`CREATE DATABASE … TEMPLATE`, or a file copy).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.migrate import upgrade_async
from db.models import Base, Image, Job, JobKind, JobStatus, LedgerEntry, LedgerKind, User
from db.session import make_engine, make_sessionmaker
from sojourn import cli
from sojourn.clock import FixedClock, ShiftedClock, use_clock, utcnow
from sojourn.services import credits, lifecycle, submission
from sojourn.services.audit import CHECKS, audit_database, read_only_session
from sojourn.settings import Credits, Settings
from sojourn.spec import JobSpec
from sojourn.storage import LocalStorage, grid_key, image_key
from tests.conftest import PINNED_START, create_migrated_database

pytestmark = pytest.mark.usefixtures("pinned_clock")

BACKENDS = ("postgres", "sqlite")
ALICE, BOB, CAROL = 1001, 1002, 1003  # queued + running; grid + upscale; failed + cancelled + grant


class RecordingQueue:
    """A queue that only notes what was sent (no broker: the audit reads the database alone)."""

    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        self.sent.append(job_id)


@dataclass(frozen=True)
class Scenario:
    queued: uuid.UUID
    running: uuid.UUID
    grid: uuid.UUID  # succeeded, 4 images and the grid
    upscale: uuid.UUID  # succeeded, one image, no grid
    failed: uuid.UUID
    cancelled: uuid.UUID


@dataclass(frozen=True)
class Template:
    backend: str
    url: str
    storage_dir: Path
    scenario: Scenario


@dataclass
class Audited:
    """A fresh copy of the scenario's database and storage."""

    backend: str
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    storage: LocalStorage
    scenario: Scenario


def make_settings(url: str, storage_dir: Path) -> Settings:
    return Settings(
        database_url=url,
        data_dir=storage_dir.parent,
        storage_dir=storage_dir,
        redis_url=None,
        credits=Credits(daily_free=40),
    )


# -- the scenario --------------------------------------------------------------------------------


async def start_running(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> None:
    """What a worker's claim writes (its first attempt)."""
    now = utcnow()
    async with sessions.begin() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                status=JobStatus.RUNNING, worker_id="node-a", started_at=now, heartbeat_at=now, attempts=1
            )
        )


async def render_and_complete(
    sessions: async_sessionmaker[AsyncSession], storage: LocalStorage, job_id: uuid.UUID, images: int
) -> None:
    """Store the files and complete the job as the worker does (`inference.runner`)."""
    await start_running(sessions, job_id)
    indexes = [(index, image_key(job_id, index)) for index in range(1, images + 1)]
    if images > 1:
        indexes.append((0, grid_key(job_id)))
    stored = []
    for index, key in indexes:
        storage.put(key, f"png {index}".encode())
        stored.append(
            lifecycle.StoredImage(index=index, seed=7 + index, width=64, height=64, storage_key=key)
        )
    async with sessions.begin() as session:
        assert await lifecycle.complete_job(session, job_id, 1, stored)


async def build_scenario(url: str, storage_dir: Path) -> Scenario:
    settings = make_settings(url, storage_dir)
    storage = LocalStorage(storage_dir)
    queue = RecordingQueue()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)

    async def submit(user_id: int, prompt: str) -> uuid.UUID:
        (job,) = await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text=prompt)
        return job.id

    try:
        queued = await submit(ALICE, "a lighthouse --seed 1")
        running = await submit(ALICE, "a harbour --seed 2")
        await start_running(sessions, running)

        grid = await submit(BOB, "a storm --seed 3")
        await render_and_complete(sessions, storage, grid, images=4)
        # An upscale: one image, no grid (as a U press makes it).
        async with sessions() as session:
            parent = await session.get(Job, grid)
            assert parent is not None
            spec = JobSpec.model_validate(parent.spec).model_copy(update={"images": 1})
        upscale_job = submission.new_job(BOB, JobKind.UPSCALE, spec, 2, submission.Origin(), action="u")
        async with sessions.begin() as session:
            await submission.hold_and_insert(session, settings, BOB, [upscale_job])
        await submission.enqueue_jobs(sessions, queue, [upscale_job])
        await render_and_complete(sessions, storage, upscale_job.id, images=1)

        failed = await submit(CAROL, "a fog --seed 4")
        cancelled = await submit(CAROL, "a rain --seed 5")
        async with sessions.begin() as session:
            assert await lifecycle.fail_job(session, failed, "boom")
            assert await lifecycle.cancel_job(session, cancelled)
            assert await credits.grant(session, CAROL, 10, key="grant:carol:1", note="welcome")
    finally:
        await engine.dispose()
    return Scenario(queued, running, grid, upscale_job.id, failed, cancelled)


@pytest.fixture(scope="module")
async def postgres_template(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Template:
    url = await create_migrated_database(postgres_admin_url)
    storage_dir = tmp_path_factory.mktemp("audit-pg") / "images"
    with use_clock(ShiftedClock(PINNED_START)):
        scenario = await build_scenario(url, storage_dir)
    return Template("postgres", url, storage_dir, scenario)


@pytest.fixture(scope="module")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    folder = tmp_path_factory.mktemp("audit-sqlite")
    url = f"sqlite+aiosqlite:///{folder / 'template.db'}"
    await upgrade_async(url)
    storage_dir = folder / "images"
    with use_clock(ShiftedClock(PINNED_START)):
        scenario = await build_scenario(url, storage_dir)
    return Template("sqlite", url, storage_dir, scenario)


async def copy_database(backend: str, template: Template, postgres_admin_url: str, folder: Path) -> str:
    if backend == "postgres":
        name = f"t_{uuid.uuid4().hex[:12]}"
        source = make_url(template.url).database
        admin = create_async_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        await admin.dispose()
        return make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    source_file = Path(str(make_url(template.url).database))
    shutil.copy(source_file, folder / "sojourn.db")  # the template's engine is disposed: no WAL left
    return f"sqlite+aiosqlite:///{folder / 'sojourn.db'}"


@pytest.fixture(params=BACKENDS)
def template(request: pytest.FixtureRequest) -> Template:
    # Looked up here, outside any event loop, so a sqlite run never builds the Postgres one.
    found: Template = request.getfixturevalue(f"{request.param}_template")
    return found


@pytest.fixture
async def audited(template: Template, postgres_admin_url: str, tmp_path: Path) -> AsyncIterator[Audited]:
    backend = template.backend
    url = await copy_database(backend, template, postgres_admin_url, tmp_path)
    storage_dir = tmp_path / "images"
    shutil.copytree(template.storage_dir, storage_dir)
    engine = make_engine(url)
    settings = make_settings(url, storage_dir)
    yield Audited(
        backend,
        url,
        engine,
        make_sessionmaker(engine),
        settings,
        LocalStorage(storage_dir),
        template.scenario,
    )
    await engine.dispose()


async def run_cli(audited: Audited, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """`sojourn audit` as an operator runs it, on its own thread (it runs its own event loop)."""
    monkeypatch.setenv("SOJOURN_DATABASE_URL", audited.url)
    monkeypatch.setenv("SOJOURN_STORAGE_DIR", str(audited.storage.root))
    monkeypatch.setenv("SOJOURN_DATA_DIR", str(audited.storage.root.parent))
    return await asyncio.to_thread(cli.main, ["audit", *args])


# -- corruptions, one at a time ------------------------------------------------------------------

Corrupt = Callable[[AsyncSession, Audited], Awaitable[None]]


async def move_balance(session: AsyncSession | AsyncConnection, user_id: int, amount: int) -> None:
    """Keep the cached balance in step with a ledger change, so only the corruption under test shows."""
    await session.execute(update(User).where(User.id == user_id).values(balance=User.balance + amount))


async def cost_of(session: AsyncSession, job_id: uuid.UUID) -> int:
    cost = await session.scalar(select(Job.cost).where(Job.id == job_id))
    assert cost is not None
    return cost


async def add_entry(
    session: AsyncSession | AsyncConnection,
    user_id: int,
    amount: int,
    kind: LedgerKind,
    key: str,
    job_id: uuid.UUID | None,
) -> None:
    await session.execute(
        insert(LedgerEntry).values(
            user_id=user_id,
            amount=amount,
            kind=kind,
            idempotency_key=key,
            job_id=job_id,
            note="",
            created_at=utcnow(),
        )
    )
    await move_balance(session, user_id, amount)


def entry_of(job_id: uuid.UUID, kind: LedgerKind):  # type: ignore[no-untyped-def]
    return (LedgerEntry.job_id == job_id) & (LedgerEntry.kind == kind)


async def balance_off_by_one(session: AsyncSession, audited: Audited) -> None:
    await move_balance(session, ALICE, 1)


async def balance_below_zero(session: AsyncSession, audited: Audited) -> None:
    balance = await session.scalar(select(User.balance).where(User.id == CAROL))
    assert balance is not None
    await add_entry(session, CAROL, -(balance + 3), LedgerKind.GRANT, "correction:carol", None)


async def second_final_under_another_key(session: AsyncSession, audited: Audited) -> None:
    grid = audited.scenario.grid
    await add_entry(session, BOB, 0, LedgerKind.SETTLE, f"final-again:{grid}", grid)


async def succeeded_job_refunded(session: AsyncSession, audited: Audited) -> None:
    grid = audited.scenario.grid
    cost = await cost_of(session, grid)
    await session.execute(
        update(LedgerEntry)
        .where(entry_of(grid, LedgerKind.SETTLE))
        .values(kind=LedgerKind.REFUND, amount=cost)
    )
    await move_balance(session, BOB, cost)


async def failed_job_settled(session: AsyncSession, audited: Audited) -> None:
    failed = audited.scenario.failed
    cost = await cost_of(session, failed)
    await session.execute(
        update(LedgerEntry)
        .where(entry_of(failed, LedgerKind.REFUND))
        .values(kind=LedgerKind.SETTLE, amount=0)
    )
    await move_balance(session, CAROL, -cost)


async def refund_of_the_wrong_amount(session: AsyncSession, audited: Audited) -> None:
    failed = audited.scenario.failed
    await session.execute(
        update(LedgerEntry).where(entry_of(failed, LedgerKind.REFUND)).values(amount=LedgerEntry.amount - 1)
    )
    await move_balance(session, CAROL, -1)


async def settle_that_moves_credits(session: AsyncSession, audited: Audited) -> None:
    grid = audited.scenario.grid
    await session.execute(update(LedgerEntry).where(entry_of(grid, LedgerKind.SETTLE)).values(amount=-1))
    await move_balance(session, BOB, -1)


async def hold_deleted(session: AsyncSession, audited: Audited) -> None:
    queued = audited.scenario.queued
    await session.execute(delete(LedgerEntry).where(entry_of(queued, LedgerKind.HOLD)))
    await move_balance(session, ALICE, await cost_of(session, queued))


async def hold_of_the_wrong_amount(session: AsyncSession, audited: Audited) -> None:
    queued = audited.scenario.queued
    await session.execute(
        update(LedgerEntry).where(entry_of(queued, LedgerKind.HOLD)).values(amount=LedgerEntry.amount - 1)
    )
    await move_balance(session, ALICE, -1)


async def second_hold(session: AsyncSession, audited: Audited) -> None:
    queued = audited.scenario.queued
    await add_entry(
        session, ALICE, -(await cost_of(session, queued)), LedgerKind.HOLD, f"hold-again:{queued}", queued
    )


async def refund_of_a_queued_job(session: AsyncSession, audited: Audited) -> None:
    queued = audited.scenario.queued
    await add_entry(
        session, ALICE, await cost_of(session, queued), LedgerKind.REFUND, f"final:{queued}", queued
    )


async def refund_deleted(session: AsyncSession, audited: Audited) -> None:
    cancelled = audited.scenario.cancelled
    await session.execute(delete(LedgerEntry).where(entry_of(cancelled, LedgerKind.REFUND)))
    await move_balance(session, CAROL, -(await cost_of(session, cancelled)))


async def settle_under_another_key(session: AsyncSession, audited: Audited) -> None:
    grid = audited.scenario.grid
    await session.execute(
        update(LedgerEntry).where(entry_of(grid, LedgerKind.SETTLE)).values(idempotency_key=f"settle:{grid}")
    )


async def refund_paid_to_another_user(session: AsyncSession, audited: Audited) -> None:
    failed = audited.scenario.failed
    cost = await cost_of(session, failed)
    await session.execute(
        update(LedgerEntry).where(entry_of(failed, LedgerKind.REFUND)).values(user_id=ALICE)
    )
    await move_balance(session, CAROL, -cost)
    await move_balance(session, ALICE, cost)


async def removal_refund_of_a_result_still_up(session: AsyncSession, audited: Audited) -> None:
    # Moderation's refund (`review`) belongs only to a result that was removed.
    grid = audited.scenario.grid
    cost = await cost_of(session, grid)
    await add_entry(session, BOB, cost, LedgerKind.REMOVED, f"removed:{grid}", grid)


async def hold_with_no_job(session: AsyncSession, audited: Audited) -> None:
    await add_entry(session, ALICE, -2, LedgerKind.HOLD, f"hold:{uuid.uuid4()}", None)


async def hold_naming_a_deleted_job(session: AsyncSession, audited: Audited) -> None:
    # What an operator's shell can do: SQLite checks foreign keys only where a connection asks, and
    # a Postgres superuser can switch the checks off. On a connection of its own, put back after.
    off, on = {
        "postgres": ("SET session_replication_role = replica", "RESET session_replication_role"),
        "sqlite": ("PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"),
    }[audited.backend]
    job_id = uuid.uuid4()
    async with audited.engine.connect() as connection:
        await connection.exec_driver_sql(off)
        await add_entry(connection, ALICE, -2, LedgerKind.HOLD, f"hold:{job_id}", job_id)
        await connection.commit()
        await connection.exec_driver_sql(on)
        await connection.commit()


async def running_without_a_fresh_heartbeat(session: AsyncSession, audited: Audited) -> None:
    stale = utcnow() - dt.timedelta(seconds=audited.settings.recovery.recover_after + 60)
    await session.execute(update(Job).where(Job.id == audited.scenario.running).values(heartbeat_at=stale))


async def queued_and_never_sent(session: AsyncSession, audited: Audited) -> None:
    long_ago = utcnow() - dt.timedelta(seconds=audited.settings.recovery.unsent_after + 60)
    await session.execute(
        update(Job).where(Job.id == audited.scenario.queued).values(enqueued_at=None, queued_at=long_ago)
    )


async def image_row_deleted(session: AsyncSession, audited: Audited) -> None:
    await session.execute(delete(Image).where(Image.job_id == audited.scenario.grid, Image.index == 2))


async def add_image(session: AsyncSession, audited: Audited, job_id: uuid.UUID, index: int, key: str) -> None:
    """An image row, and its file (so only the row's place is wrong)."""
    audited.storage.put(key, b"png")
    await session.execute(
        insert(Image).values(job_id=job_id, index=index, seed=1, width=64, height=64, storage_key=key)
    )


async def grid_row_on_an_upscale(session: AsyncSession, audited: Audited) -> None:
    upscale = audited.scenario.upscale
    await add_image(session, audited, upscale, 0, grid_key(upscale))


async def image_row_on_a_failed_job(session: AsyncSession, audited: Audited) -> None:
    failed = audited.scenario.failed
    await add_image(session, audited, failed, 1, image_key(failed, 1))


async def image_file_deleted(session: AsyncSession, audited: Audited) -> None:
    path = audited.storage.local_path(image_key(audited.scenario.grid, 3))
    assert path is not None
    path.unlink()


CORRUPTIONS: list[tuple[Corrupt, str, str]] = [
    # (corruption, the rule it breaks, the subject named: a user or a job of the scenario)
    (balance_off_by_one, "balance-mismatch", "user alice"),
    (balance_below_zero, "negative-balance", "user carol"),
    (second_final_under_another_key, "final-duplicate", "job grid"),
    (succeeded_job_refunded, "final-wrong-kind", "job grid"),
    (failed_job_settled, "final-wrong-kind", "job failed"),
    (refund_of_the_wrong_amount, "refund-amount", "job failed"),
    (settle_that_moves_credits, "settle-amount", "job grid"),
    (hold_deleted, "hold-missing", "job queued"),
    (hold_of_the_wrong_amount, "hold-amount", "job queued"),
    (second_hold, "hold-duplicate", "job queued"),
    (refund_of_a_queued_job, "final-on-active-job", "job queued"),
    (refund_deleted, "final-missing", "job cancelled"),
    (settle_under_another_key, "ledger-key", "job grid"),
    (refund_paid_to_another_user, "entry-wrong-user", "job failed"),
    (removal_refund_of_a_result_still_up, "removal-refund", "job grid"),
    (hold_with_no_job, "entry-without-job", "user alice"),
    (hold_naming_a_deleted_job, "entry-without-job", "job *"),
    (running_without_a_fresh_heartbeat, "stranded-running", "job running"),
    (queued_and_never_sent, "unsent-queued", "job queued"),
    (image_row_deleted, "image-rows-mismatch", "job grid"),
    (grid_row_on_an_upscale, "image-rows-mismatch", "job upscale"),
    (image_row_on_a_failed_job, "images-on-unsucceeded-job", "job failed"),
    (image_file_deleted, "image-file-missing", "job grid"),
]


def expected_subject(subject: str, scenario: Scenario) -> str | None:
    kind, name = subject.split(" ")
    if kind == "user":
        return f"user {ALICE if name == 'alice' else CAROL if name == 'carol' else BOB}"
    return None if name == "*" else f"job {getattr(scenario, name)}"


# -- tests ---------------------------------------------------------------------------------------


async def test_a_clean_database_passes(audited: Audited, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    report = await audit_database(audited.sessions, audited.settings, audited.storage)
    assert report.violations == [] and report.ok
    async with audited.sessions() as session:
        entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
    assert (report.users, report.jobs, report.ledger_entries) == (3, 6, entries)

    assert await run_cli(audited, monkeypatch) == 0
    assert capsys.readouterr().out == f"audit: 0 violations in 3 users, 6 jobs, {entries} ledger entries\n"


@pytest.mark.parametrize(
    ("corrupt", "rule", "subject"), CORRUPTIONS, ids=[c[0].__name__ for c in CORRUPTIONS]
)
async def test_each_corruption_is_reported_under_its_rule(  # type: ignore[no-untyped-def]
    audited: Audited, corrupt: Corrupt, rule: str, subject: str, monkeypatch, capsys
) -> None:
    async with audited.sessions.begin() as session:
        await corrupt(session, audited)

    # The clock stands still while the library and the CLI both audit: a detail that counts
    # seconds ("last beat 360 s ago") must read the same in both, however slow the machine.
    with use_clock(FixedClock(utcnow())):
        report = await audit_database(audited.sessions, audited.settings, audited.storage)
        assert [violation.rule for violation in report.violations] == [rule], report.violations
        (violation,) = report.violations
        named = expected_subject(subject, audited.scenario)
        assert violation.subject == named if named else violation.subject.startswith("job ")
        assert not report.ok

        assert await run_cli(audited, monkeypatch) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [str(violation), report.summary()]
    assert report.summary().startswith("audit: 1 violations in 3 users, 6 jobs, ")


async def test_violations_say_what_is_wrong_with_the_numbers(audited: Audited, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    async with audited.sessions.begin() as session:
        await balance_off_by_one(session, audited)
        await refund_of_the_wrong_amount(session, audited)
        await image_row_deleted(session, audited)
        cost = await cost_of(session, audited.scenario.failed)
        balance = await session.scalar(select(User.balance).where(User.id == ALICE))
    assert balance is not None

    report = await audit_database(audited.sessions, audited.settings, audited.storage)
    details = {violation.rule: violation.detail for violation in report.violations}
    assert details["balance-mismatch"].startswith(
        f"cached balance {balance} but the ledger sums to {balance - 1}"
    )
    assert f"refunded {cost - 1}, not its cost {cost}" in details["refund-amount"]
    assert "missing [2]" in details["image-rows-mismatch"]

    assert await run_cli(audited, monkeypatch, "--json") == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] is False and printed["jobs"] == 6
    assert [v["rule"] for v in printed["violations"]] == [v.rule for v in report.violations]


async def test_the_audit_writes_nothing(audited: Audited) -> None:
    async with audited.sessions.begin() as session:
        await balance_off_by_one(session, audited)
        await hold_deleted(session, audited)
        await queued_and_never_sent(session, audited)

    async def snapshot() -> dict[str, object]:
        async with audited.sessions() as session:
            counts = {
                table.name: await session.scalar(select(func.count()).select_from(table))
                for table in Base.metadata.sorted_tables
            }
            balances = (await session.execute(select(User.id, User.balance).order_by(User.id))).all()
            jobs = (await session.execute(select(Job.id, Job.status, Job.enqueued_at).order_by(Job.id))).all()
            ledger = (
                await session.execute(select(LedgerEntry.id, LedgerEntry.amount).order_by(LedgerEntry.id))
            ).all()
        return {"counts": counts, "balances": balances, "jobs": jobs, "ledger": ledger}

    before = await snapshot()
    assert not (await audit_database(audited.sessions, audited.settings, audited.storage)).ok
    assert await snapshot() == before


async def test_a_write_inside_the_audit_transaction_fails(audited: Audited) -> None:
    async with read_only_session(audited.sessions) as session:
        with pytest.raises(DBAPIError, match=r"(?i)read-only|readonly"):
            await session.execute(update(User).where(User.id == ALICE).values(balance=User.balance + 1))

    # The connection went back to the pool writable again.
    async with audited.sessions.begin() as session:
        await session.execute(update(User).where(User.id == ALICE).values(balance=User.balance + 1))
        if audited.backend == "sqlite":
            assert (await session.execute(text("PRAGMA query_only"))).scalar() == 0
    report = await audit_database(audited.sessions, audited.settings, audited.storage)
    assert [violation.rule for violation in report.violations] == ["balance-mismatch"]


async def test_the_command_refuses_a_missing_sqlite_file_instead_of_creating_one(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch, capsys
) -> None:
    missing = tmp_path / "nowhere" / "sojourn.db"
    monkeypatch.setenv("SOJOURN_DATABASE_URL", f"sqlite+aiosqlite:///{missing}")
    assert await asyncio.to_thread(cli.main, ["audit"]) == 2
    assert "no database at" in capsys.readouterr().err and not missing.exists()


def test_every_check_is_registered_once_and_documented() -> None:
    assert len(set(CHECKS)) == len(CHECKS)
    assert all(check.__name__.startswith("check_") and check.__doc__ for check in CHECKS)


async def test_the_audit_reads_one_snapshot(audited: Audited) -> None:
    """A write committed while the audit runs is not seen half way: every check reads the same moment."""
    balance_of_alice = select(User.balance).where(User.id == ALICE)
    async with read_only_session(audited.sessions) as session:
        before = await session.scalar(balance_of_alice)
        async with audited.sessions.begin() as writer:
            await move_balance(writer, ALICE, 5)
        assert await session.scalar(balance_of_alice) == before
    async with audited.sessions() as session:
        assert await session.scalar(balance_of_alice) == (before or 0) + 5
