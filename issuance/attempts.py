"""Counting attempts in the shared cache, atomically, before they are evaluated.

An attempt first takes a slot in the counter of every subject it concerns (a person, an address,
a staff username): one Redis script checks every counter against its limit and, only if all
have room, increments them all. So however many requests arrive at once, in however many
processes, no more attempts than a limit are ever evaluated for one subject within its window.
A failed attempt keeps its slot; a successful one gives it back.

On Redis (production and CI) each operation is one script, run atomically by the server. On any
other cache (the local-memory cache of the embedded default, one process) the same steps run
under a lock of the process.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.utils import timezone

if TYPE_CHECKING:
    from redis.commands.core import Script

# KEYS: the counters; ARGV: the window in ms, then each counter's limit.
# Returns {} when a counter is full (nothing incremented), else each counter's new value.
_TAKE = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then
    return {}
  end
end
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
  end
end
return counts
"""

# Gives a slot back, never below zero and never on a counter that has expired.
_RELEASE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""

# Counts one (without a limit) and starts the window on the first.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
"""


@dataclass(frozen=True)
class Slot:
    key: str
    limit: int


_local_lock = threading.Lock()
_scripts: dict[str, Script] = {}


def _cache():
    return caches["default"]


def _redis(cache):
    """The Redis client of Django's Redis cache, or None on any other cache."""
    if isinstance(cache, RedisCache):
        return cache._cache.get_client(write=True)
    return None


def _run(client, source: str, keys: list[str], args: list[int]):
    """One script, atomic on the server (by its SHA1, loaded again if the server lost it)."""
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = client.register_script(source)
    return script(keys=keys, args=args, client=client)


def take(slots: Sequence[Slot], window_seconds: int) -> list[int] | None:
    """A slot in every counter, or None (and nothing taken) when any of them is full.

    The new values are returned in the order of ``slots``; the attempt that takes the last slot
    of a counter sees its limit."""
    cache = _cache()
    client = _redis(cache)
    if client is not None:
        keys = [cache.make_and_validate_key(slot.key) for slot in slots]
        counts = _run(client, _TAKE, keys, [window_seconds * 1000, *(s.limit for s in slots)])
        return [int(n) for n in counts] if counts else None
    with _local_lock:
        current = cache.get_many([slot.key for slot in slots])
        if any((current.get(slot.key) or 0) >= slot.limit for slot in slots):
            return None
        counts = []
        for slot in slots:
            if cache.add(slot.key, 1, window_seconds):
                counts.append(1)
            else:
                counts.append(cache.incr(slot.key))
        return counts


def release(key: str) -> None:
    """Gives back the slot of an attempt that succeeded."""
    cache = _cache()
    client = _redis(cache)
    if client is not None:
        _run(client, _RELEASE, [cache.make_and_validate_key(key)], [])
        return
    with _local_lock:
        if (cache.get(key) or 0) > 0:
            cache.decr(key)


def count(key: str, window_seconds: int) -> int:
    """Counts one more in a window that starts with the first; the new value."""
    cache = _cache()
    client = _redis(cache)
    if client is not None:
        return int(
            _run(client, _COUNT, [cache.make_and_validate_key(key)], [window_seconds * 1000])
        )
    with _local_lock:
        if cache.add(key, 1, window_seconds):
            return 1
        return cache.incr(key)


def hold_until(key: str, until: datetime) -> None:
    """Keeps a (full) counter until ``until`` at the latest: a lock ends when its row says."""
    seconds = math.floor((until - timezone.now()).total_seconds())
    cache = _cache()
    if seconds <= 0:
        cache.delete(key)
    else:
        cache.touch(key, seconds)


def clear(*keys: str) -> None:
    _cache().delete_many(list(keys))


def value(key: str) -> int:
    return _cache().get(key) or 0
