"""The official matrices, the regression baseline and the static site builder."""
from pathlib import Path

MATRICES_DIR = Path(__file__).parent / "matrices"
"""Packaged matrix YAML files; the engine finds them through the ``biasboard.site`` entry point ``matrices``."""
