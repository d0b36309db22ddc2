"""Which bot process delivers a job: Discord's shard rule on the guild id, cache or no cache."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bot.channels import ClientChannels


def process(shard_ids: list[int] | None, shard_count: int = 2) -> ClientChannels:
    # Nothing cached yet (a process that just started): `get_guild` knows no guild.
    client: Any = SimpleNamespace(shard_ids=shard_ids, shard_count=shard_count, get_guild=lambda _id: None)
    return ClientChannels(client)


def guild_on_shard(shard: int, shard_count: int = 2) -> int:
    return (1_187_000_000 << 22) + ((shard - (1_187_000_000 % shard_count)) % shard_count << 22)


def test_each_guild_is_delivered_by_the_process_running_its_shard_before_the_cache_fills() -> None:
    first, second = process([0]), process([1])
    for shard, owner, other in ((0, first, second), (1, second, first)):
        guild = guild_on_shard(shard)
        assert (guild >> 22) % 2 == shard
        assert owner.serves(guild) and not other.serves(guild)


def test_direct_messages_go_to_shard_zero_and_one_process_serves_all() -> None:
    assert process([0]).serves(None) and not process([1]).serves(None)
    everything = process(None)
    assert everything.serves(None) and everything.serves(guild_on_shard(1))
