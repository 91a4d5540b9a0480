"""The F008 reception gate: decode a package and check it against every rejection rule."""

from sync_stream.gate.f008 import AcceptedPackage, F008Gate
from sync_stream.gate.reasons import Reason

__all__ = ["AcceptedPackage", "F008Gate", "Reason"]
