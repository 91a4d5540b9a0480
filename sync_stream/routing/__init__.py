"""Content-based routing: each process of a package goes to its transformer and facades."""

from sync_stream.routing.router import RoutedPackage, Router

__all__ = ["RoutedPackage", "Router"]
