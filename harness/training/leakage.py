"""Train/test leakage: a method that fine-tunes on a benchmark's own data marks the handle, and that benchmark's
task flags its result, so the leaderboard can show the score is not a clean evaluation."""
from __future__ import annotations

TRAINED_ON = "trained_on"
"""Handle extras key: benchmark names whose data the model was fine-tuned on."""


def leakage(handle, task: str) -> tuple[dict[str, bool], list[str]]:
    """(flags, notes) to add to a result of ``task`` evaluated on ``handle``; empty when there is no leakage.

    >>> from types import SimpleNamespace
    >>> leakage(SimpleNamespace(extras={"trained_on": ["stereoset"]}, lineage=("bias_vector(...)",)), "stereoset")[0]
    {'leakage': True}
    """
    trained = (getattr(handle, "extras", None) or {}).get(TRAINED_ON) or ()
    if task not in trained:
        return {}, []
    steps = ", ".join(getattr(handle, "lineage", ()) or ()) or "the method"
    return {"leakage": True}, [f"LEAKAGE: the model was fine-tuned on {task} data ({steps}); this score is not a "
                               "held-out evaluation"]
