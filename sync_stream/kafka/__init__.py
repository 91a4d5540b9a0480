"""Kafka client construction from settings and idempotent topic creation."""
