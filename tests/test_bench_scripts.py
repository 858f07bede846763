"""The stand-alone bench scripts that bench/run does not run still run, so their figures can be made again."""

from __future__ import annotations

import importlib.util

import pytest

from tests.support import REPO


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mode", ["worker", "bare"])
def test_pool_worker_path_serves_its_requests(mode):
    """Both loops of bench/pool_worker_path.py serve hello requests (each answer is checked to be a 200)."""
    micros = load("pool_worker_path").serve(mode, 50)
    assert 0 < micros < 100_000
