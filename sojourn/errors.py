"""Domain errors. Each carries a message a user can act on; adapters show `.message` as is."""

from __future__ import annotations

import datetime as dt


class UserError(Exception):
    """An error caused by the request, safe to show to the person who made it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Banned(UserError):
    def __init__(self, reason: str = "", ends_at: dt.datetime | None = None) -> None:
        until = f"until {discord_time(ends_at)}" if ends_at else "until a moderator lifts the ban"
        why = f" Reason: {reason}." if reason else ""
        super().__init__(
            f"You are banned from using sojourn on this server {until}.{why} "
            "Ask a moderator if this is a mistake; /info shows your ban."
        )
        self.reason = reason
        self.ends_at = ends_at


def discord_time(moment: dt.datetime) -> str:
    """A moment as Discord shows it in each reader's own time zone, with how long from now."""
    seconds = int(moment.timestamp())
    return f"<t:{seconds}:f> (<t:{seconds}:R>)"


class NotAModerator(UserError):
    def __init__(self) -> None:
        super().__init__(
            "Only this server's moderators (Manage Server, or the moderator role set with "
            "/mod settings) can do that. Nothing was changed."
        )


class PromptBlocked(UserError):
    """The word filter refused a prompt; `strike_id` is set once the block is recorded."""

    def __init__(self, describes: list[str], strike_id: int | None = None) -> None:
        shown = "; ".join(describes[:3]) + (f"; and {len(describes) - 3} more" if len(describes) > 3 else "")
        super().__init__(
            f"This prompt was blocked by the server's word filter: {shown}. Nothing was charged. "
            "Rephrase it, or press Appeal if you think the filter is wrong (it counts as a strike "
            "until a moderator accepts the appeal)."
        )
        self.describes = describes
        self.strike_id = strike_id


class InsufficientCredits(UserError):
    def __init__(self, needed: int, balance: int) -> None:
        super().__init__(
            f"This needs {needed} credits and you have {balance}. "
            "Try a lower --q, fewer permutations or --repeat, or wait for tomorrow's free credits."
        )
        self.needed = needed
        self.balance = balance


class TooManyJobs(UserError):
    def __init__(self, active: int, adding: int, allowed: int) -> None:
        super().__init__(
            f"You have {active} jobs running or waiting and this adds {adding}; the limit is {allowed}. "
            "Wait for some to finish, or /cancel one."
        )


class JobNotFound(UserError):
    def __init__(self, job_id: object, message: str | None = None) -> None:
        super().__init__(
            message or f"There is no job {job_id}: check the id (from /info or the result message)."
        )

    @classmethod
    def none_active(cls) -> JobNotFound:
        return cls(None, "You have no job running or waiting: there is nothing to cancel.")


class NotYourJob(UserError):
    def __init__(self, job_id: object, action: str) -> None:
        super().__init__(f"Job {job_id} belongs to someone else: you can only {action} your own jobs.")


class JobAlreadyEnded(UserError):
    def __init__(self, job_id: object, status: str) -> None:
        super().__init__(f"Job {job_id} has already {status}: there is nothing to cancel.")
