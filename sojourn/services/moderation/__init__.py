"""Moderation: who moderates, bans, word lists, strikes, appeals, held results, removals, the log.

Every change a moderator makes is checked here (`permissions.require_moderator`), never only in
the client, and written to the append-only audit log in the same transaction as the change.
"""
