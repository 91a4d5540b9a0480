"""The embedded Kafka-API broker (Tansu) for development, demos and tests."""

from sync_stream.embedded.broker import EmbeddedBroker

__all__ = ["EmbeddedBroker"]
