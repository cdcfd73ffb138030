"""Fixtures: one stand-in server per test module, reset to defaults before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.standins import StandinConfig, StandinServer, serve_standins


@pytest.fixture(scope="module")
def standins_server() -> Iterator[StandinServer]:
    """A running stand-in server shared by the tests of one module."""
    with serve_standins() as server:
        yield server


@pytest.fixture
def standins(standins_server: StandinServer) -> StandinServer:
    """The module's server with default behaviour and an empty journal."""
    standins_server.configure(StandinConfig())
    standins_server.reset()
    return standins_server
