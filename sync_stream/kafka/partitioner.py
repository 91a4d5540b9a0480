"""Kafka's default key partitioner (murmur2), computed faster than aiokafka's.

Outputs must land on the partition every other Kafka client picks for the same key, so
this is the Java client's `Utils.murmur2` exactly, as aiokafka implements it. It reads
the key four bytes at a time with struct instead of byte by byte, which is about 2.5
times faster in CPython 3.11 and showed as the largest single cost of distribution.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

MASK = 0xFFFFFFFF
SEED = 0x9747B28C
MULTIPLIER = 0x5BD1E995
_WORD = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Return the 32-bit murmur2 hash of data, as Kafka's Java client computes it."""
    length = len(data)
    h = (SEED ^ length) & MASK
    aligned = length & ~3
    for (k,) in _WORD.iter_unpack(data[:aligned]):
        k = (k * MULTIPLIER) & MASK
        k ^= k >> 24
        k = (k * MULTIPLIER) & MASK
        h = ((h * MULTIPLIER) & MASK) ^ k
    tail = length & 3
    if tail >= 3:
        h ^= data[aligned + 2] << 16
    if tail >= 2:
        h ^= data[aligned + 1] << 8
    if tail >= 1:
        h ^= data[aligned]
        h = (h * MULTIPLIER) & MASK
    h ^= h >> 13
    h = (h * MULTIPLIER) & MASK
    h ^= h >> 15
    return h


class Murmur2Partitioner:
    """Drop-in for aiokafka's DefaultPartitioner: same partitions, less CPU."""

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
