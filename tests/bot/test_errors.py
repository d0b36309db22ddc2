"""What a user is told when the database is unreachable: a retryable outage, nothing charged."""

from __future__ import annotations

import pytest
from discord import app_commands
from sqlalchemy.exc import OperationalError

from bot.errors import DATABASE_DOWN, describe_app_command_error


@pytest.mark.parametrize(
    "outage",
    [
        OperationalError("SELECT 1", {}, Exception("the database system is shutting down")),
        ConnectionRefusedError(),
    ],
)
def test_a_database_outage_is_answered_as_one(outage: Exception) -> None:
    error = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    error.original = outage  # discord.py builds these with a live command; only .original is read
    assert describe_app_command_error(error) == DATABASE_DOWN
    assert "nothing was charged" in DATABASE_DOWN and "try again" in DATABASE_DOWN


def test_a_bug_is_not_an_outage() -> None:
    error = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    error.original = KeyError("oops")
    assert describe_app_command_error(error) is None
