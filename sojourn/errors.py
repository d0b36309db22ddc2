"""Domain errors. Each carries a message a user can act on; adapters show `.message` as is."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the request, safe to show to the person who made it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Banned(UserError):
    def __init__(self) -> None:
        super().__init__(
            "You are banned from using sojourn on this server. Ask a moderator if this is a mistake."
        )


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
