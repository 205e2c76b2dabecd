"""Fixtures for the control plane's tests: moto in-process, provisioned like the real stack."""

from __future__ import annotations

import pytest
from control_helpers import ENV, World, fresh_world, mocked_account


@pytest.fixture(scope="module")
def _account():
    """One mocked account for these tests (provisioning it takes seconds); tests get it wiped."""
    yield from mocked_account(ENV)


@pytest.fixture
def world(_account: World):
    yield from fresh_world(_account)
