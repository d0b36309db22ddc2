"""One submitting process for `test_submission_processes`: waits at a barrier in Redis, then fires
its submissions for one user all at once and prints what became of them, as JSON.

    python -m tests.services.submitting_process SETTINGS_JSON USER_ID COUNT BARRIER_KEY
"""

from __future__ import annotations

import asyncio
import json
import sys

import redis

from db.session import make_engine, make_sessionmaker
from sojourn.celery_app import make_celery
from sojourn.errors import TooManyJobs, UserError
from sojourn.queue import CeleryJobQueue
from sojourn.services.submission import submit_prompt
from sojourn.settings import Settings


async def submit_all(settings: Settings, user_id: int, count: int, barrier: str) -> dict[str, object]:
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    queue = CeleryJobQueue(make_celery(settings))
    async with sessions() as session:  # connected before the barrier, so both start at once
        await session.connection()
    assert settings.redis_url is not None
    broker = redis.Redis.from_url(settings.redis_url)
    broker.rpush(f"{barrier}:ready", 1)
    await asyncio.to_thread(broker.blpop, [f"{barrier}:go"], 60)

    async def one(index: int) -> str:
        try:
            jobs = await submit_prompt(
                sessions, settings, queue, user_id=user_id, text=f"a lighthouse, take {index} --seed {index}"
            )
        except TooManyJobs:
            return "too many"
        except UserError as error:
            return f"refused: {error.message}"
        return str(jobs[0].id)

    outcomes = await asyncio.gather(*(one(i) for i in range(count)))
    await engine.dispose()
    refused = [outcome for outcome in outcomes if outcome.startswith("refused")]
    return {
        "accepted": [outcome for outcome in outcomes if outcome != "too many" and outcome not in refused],
        "too_many": outcomes.count("too many"),
        "other": refused,
    }


def main() -> None:
    settings = Settings.model_validate_json(sys.argv[1])
    result = asyncio.run(submit_all(settings, int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
