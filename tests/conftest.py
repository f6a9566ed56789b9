from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bridge import logs


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """`logs.configure` changes process-wide state; give every test a clean slate."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logs.reset()
    root.handlers[:] = handlers
    root.setLevel(level)
