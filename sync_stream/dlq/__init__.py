"""Failure records: the retry tiers and the dead-letter queue share one record format."""
