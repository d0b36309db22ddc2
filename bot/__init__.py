"""The Discord front end: a thin discord.py layer over the services in `sojourn.services`."""

from bot.bot import SojournBot, create_bot

__all__ = ["SojournBot", "create_bot"]
