"""Benchmarks of the sync-stream pipeline against baseline Kafka loops: `python -m benchmarks`."""
