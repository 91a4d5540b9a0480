"""Fixtures of the unit tests: settings from a clean environment and the F008 gate."""

from __future__ import annotations

import os

import pytest

from sync_stream.gate import F008Gate
from sync_stream.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_sync_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove SYNC_* variables of the calling shell, so every test starts from the defaults.

    SYNC_SCHEMAS_DIR stays, because it only sets where the schema files are.
    """
    for name in list(os.environ):
        if name.startswith("SYNC_") and name != "SYNC_SCHEMAS_DIR":
            monkeypatch.delenv(name)


@pytest.fixture
def default_settings() -> Settings:
    return load_settings()


@pytest.fixture
def gate(default_settings: Settings) -> F008Gate:
    return F008Gate(default_settings)
