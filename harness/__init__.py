"""biasboard harness: registries, model handles, runner, results store, statistics.

The public API is listed in ``__all__``; everything else is private to the package.
"""
__version__ = "0.1.0"

from biasboard.harness.registry import METHODS, TASKS, RegistryError, register_method, register_task  # noqa: E402
from biasboard.harness.specs import Metric, RunContext, TaskResult, Variant  # noqa: E402

__all__ = [
    "__version__",
    "METHODS",
    "TASKS",
    "Metric",
    "RegistryError",
    "RunContext",
    "TaskResult",
    "Variant",
    "register_method",
    "register_task",
]
