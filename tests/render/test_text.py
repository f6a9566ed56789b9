"""The one-line call text of the dry-run log and `callbridge route`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from bridge.core.calls import fold
from bridge.core.events import decode
from bridge.render.text import headline
from bridge.simulate import ScenarioContext, build

T0 = datetime(2024, 3, 5, 9, 41, 7, tzinfo=UTC)


@pytest.mark.parametrize(("copies", "shown"), [(1, "[1 transfer]"), (2, "[2 transfers]")])
def test_the_transfers_are_counted_in_words(copies: int, shown: str) -> None:
    docs = build("cold-transfer", ScenarioContext(T0, seed=1))
    call = fold([decode(json.dumps(doc).encode()) for doc in docs])
    assert len(call.transfers) == 1
    call = msgspec.structs.replace(call, transfers=call.transfers * copies)
    assert headline(call).endswith(f"s {shown}")  # after "talked 3m22s"
