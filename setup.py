"""Maps the project's top-level folders under the ``biasboard.`` namespace (everything else is in pyproject.toml).

``harness/`` installs as ``biasboard.harness``, ``tasks/`` as ``biasboard.tasks`` and so on, so installing biasboard
never shadows, or is shadowed by, another distribution's ``tasks`` or ``leaderboard`` package. Subpackages are found
by walking the folders, so a new submission folder needs no edit here.
"""
from setuptools import find_packages, setup

FOLDERS = ("harness", "tasks", "submissions", "leaderboard")

setup(
    packages=[f"biasboard.{pkg}" for folder in FOLDERS for pkg in find_packages(include=[folder, f"{folder}.*"])],
    package_dir={f"biasboard.{folder}": folder for folder in FOLDERS},
)
