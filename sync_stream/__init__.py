"""sync-stream: the MXP-Sync orchestrator of MAXPOINT v2 as a Kafka stream service."""

__version__ = "0.1.0"
