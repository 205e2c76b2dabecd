"""Training tests run their jobs on one CPU thread, as the local runner caps jobs that share a laptop."""

from __future__ import annotations

import pytest

from spaceport.compute import THREADS_ENV


@pytest.fixture(autouse=True)
def one_cpu_thread(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "1")
