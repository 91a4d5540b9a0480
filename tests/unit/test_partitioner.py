"""The fast murmur2 partitioner picks the same partitions as aiokafka's."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2
from hypothesis import given
from hypothesis import strategies as st

from sync_stream.kafka.partitioner import Murmur2Partitioner, murmur2


@given(st.binary(max_size=200))
def test_murmur2_matches_aiokafka(data: bytes) -> None:
    assert murmur2(data) == reference_murmur2(data)


@given(st.binary(min_size=1, max_size=80), st.integers(min_value=1, max_value=64))
def test_partitioner_matches_default(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert Murmur2Partitioner()(key, partitions, partitions) == expected


def test_murmur2_known_java_values() -> None:
    # Values of org.apache.kafka.common.utils.Utils.murmur2 as published in Kafka's
    # UtilsTest (as signed 32-bit ints there).
    signed = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for data, value in signed.items():
        assert murmur2(data) == value & 0xFFFFFFFF, data


@given(st.binary(min_size=16, max_size=90), st.binary(max_size=20), st.integers(0, 3))
def test_murmur2_prefix_cache_matches(prefix: bytes, suffix: bytes, repeat: int) -> None:
    # Keys that share a `:`-terminated prefix take the cached-prefix path.
    key = prefix + b":" + suffix.replace(b":", b"")
    for _ in range(repeat + 1):
        assert murmur2(key) == reference_murmur2(key)
