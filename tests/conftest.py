"""Shared fixtures. chDB allows one embedded engine path per process, so the whole test session
shares one store; tests keep apart by using their own run and agent ids."""

from __future__ import annotations

import uuid

import pytest

from siliconbench.collector.prices import ensure_prices
from siliconbench.collector.store import Store
from tests.servers import HeldPort


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Store:
    opened = Store.open(f"chdb://{tmp_path_factory.mktemp('chdb')}")
    ensure_prices(opened)  # as `serve` does: reports read the shipped prices, never load them
    yield opened
    opened.close()


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def held_port() -> int:
    """A loopback port of this test's own, bound and not listening (tests/servers.py HeldPort): connections
    to it are refused until a server started on it listens."""
    with HeldPort() as port:
        yield port.port
