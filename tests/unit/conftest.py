"""Shared fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_upstreams import FakeUpstreams, start_fake_server


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeUpstreams]:
    """The local fake of Decentraland's upstreams, one server per test module."""
    fake = FakeUpstreams()
    server, thread = start_fake_server(fake)
    yield fake
    server.should_exit = True
    thread.join(10)
