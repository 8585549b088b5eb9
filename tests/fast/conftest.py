"""Fixtures of the fast mode's tests: the real encoder and decoder files (fetched and verified if missing)."""

import pytest

from nst.weights import fetch as weights_fetch


@pytest.fixture(scope="module")
def fast_paths():
    return weights_fetch.ensure_fast_weights()
