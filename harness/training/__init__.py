"""Training support of the methods and tasks that train models: one loop, one config, one weight cache.

- ``config``: ``TrainConfig``, the one settings type (``family`` = downstream, lm or vision picks its fields).
- ``loop``: ``train_loop``, the one loop (seeding, batching, optimiser / scheduler / clipping, stopping, best
  weights); each family plugs in a step.
- ``cache``: cache keys, weight folders, atomic saving.
- ``objectives``: ``Objective``, the one objective type (ERM, a method's ``training_loss`` hook).
- ``downstream``: classifier heads on text backbones for the fine-tuning tasks (re-exported here).
- ``lm``: language-model debiasing fine-tuning and the ``LMFinetuneMethod`` base; ``robust``: its objectives;
  ``corpora``: its labelled corpora; ``leakage``: flags for models fine-tuned on a benchmark's own data.
- ``vision``: the worst-group image ``Trainer``.
"""
from __future__ import annotations

from biasboard.harness.training.config import TrainConfig
from biasboard.harness.training.downstream import (FineTuned, TextClassifier, TextDataset, build_classifier, finetune,
                                                   predict, probabilities)
from biasboard.harness.training.loop import train_loop

__all__ = ["TrainConfig", "TextDataset", "TextClassifier", "FineTuned", "build_classifier", "finetune", "predict",
           "probabilities", "train_loop"]
