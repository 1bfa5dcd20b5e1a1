"""HolisticBias Likelihood Bias (Smith et al., EMNLP 2022): see ``task``, ``data`` and ``metrics``."""
from biasboard.tasks.holistic_bias.task import HolisticBias

__all__ = ["HolisticBias"]
