"""The pairing rules (tests/pairing_contract.py) checked against the in-memory matchmaker."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from sfu.pairing import Matchmaker

from .pairing_contract import PairingContract


class TestInMemoryMatchmaker(PairingContract):
    @pytest.fixture
    def make_matchmaker(self) -> Callable[..., Any]:
        def make(
            *, rematch_cooldown: float = 5.0, interest_wait: float = 5.0, language_wait: float = 0.0, seed: int = 0
        ) -> Matchmaker:
            return Matchmaker(
                rematch_cooldown=rematch_cooldown,
                interest_wait=interest_wait,
                language_wait=language_wait,
                rng=random.Random(seed),
            )

        return make
