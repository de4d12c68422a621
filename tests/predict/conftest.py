"""Fixtures of the prediction tests: a small dask cluster."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, shared by the tests of a file (starting one takes seconds)."""
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is an extra: pip install 'infocus[distributed]'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as local:
        yield local.scheduler_address
