"""A real local Ray cluster for tests and benchmarks: 2 CPUs, loopback only, no usage statistics.

Import this module before anything imports Ray: the loopback setting is read when Ray loads.
"""
from __future__ import annotations

import os

from biasboard.harness.executors.ray import local_cluster_env

for _key, _value in local_cluster_env().items():
    os.environ.setdefault(_key, _value)


def local_cluster(ray):
    """Generator for a module-scoped fixture: start a 2-CPU cluster unless one is connected, stop it after."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()
