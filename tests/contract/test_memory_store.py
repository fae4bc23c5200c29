from __future__ import annotations

import pytest

from cast_core.store_memory import MemoryStreamLinkStore
from tests.contract.store_contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStreamLinkStore:
        return MemoryStreamLinkStore("contract")
