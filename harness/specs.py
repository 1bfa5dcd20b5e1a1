"""Core value types shared by tasks, methods, the runner and the store.

A task returns a ``TaskResult``: named ``Metric`` values (each with n and an uncertainty), per-group breakdowns,
and per-example rows, so scores can be recomputed and compared pairwise without rerunning models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

DIRECTIONS = ("max", "min", "target")


def distance_from_ideal(value: float | None, ideal: float | None, direction: str,
                        scale: float | None = None) -> float | None:
    """How far ``value`` sits from ``ideal`` on the bad side: the one definition the board and the gate use.

    In the metric's own units (0 = at the ideal), or as a fraction of ``scale`` when one is given (the distance
    the board draws darkest). ``target``: |value - ideal|; ``max``: ideal - value; ``min``: value - ideal; a value
    beyond a ``max``/``min`` ideal is at the ideal (0), since better than perfect is not a bias. None without a
    value or an ideal.

    >>> distance_from_ideal(42.0, 50.0, "target"), distance_from_ideal(80.0, 100.0, "max")
    (8.0, 20.0)
    >>> distance_from_ideal(-0.1, 0.0, "min"), distance_from_ideal(60.0, 50.0, "target", scale=25.0)
    (0.0, 0.4)
    """
    if value is None or ideal is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if direction == "target":
        d = abs(value - ideal)
    elif direction == "max":
        d = max(0.0, ideal - value)
    else:
        d = max(0.0, value - ideal)
    return d / scale if scale else d


@dataclass(frozen=True)
class Metric:
    """One reported number with its sample size and uncertainty."""

    value: float
    """The point estimate (percent metrics on the 0-100 scale, as in the papers)."""
    n: int
    """Number of examples (pairs, sentences, tests...) behind the value."""
    ideal: float | None = None
    """Where an unbiased (or perfect) model sits: 50 for stereotype scores, 0 for gaps and effect sizes."""
    direction: str = "target"
    """``max`` (higher is better), ``min`` (lower is better) or ``target`` (closer to ``ideal`` is better)."""
    ci95: tuple[float, float] | None = None
    """95% bootstrap confidence interval, when the metric has one."""
    p_value: float | None = None
    """Permutation / test p-value, when the metric has one."""
    unit: str = ""
    """Display unit, e.g. ``%``."""
    description: str = ""
    """One line for the leaderboard: what the number is."""
    scale: float | None = None
    """Distance from the ideal that counts as far (the board's darkest colour), in the metric's units; None lets
    the board choose."""
    per_example: str = ""
    """Example-row field this metric is the mean of (times 100 for ``%`` metrics), e.g. CrowS-Pairs
    ``more_is_higher``: the regression gate resamples it for its paired test. Empty when it is not such a mean."""
    per_example_where: dict[str, Any] | None = None
    """Only rows whose fields equal these values count (e.g. ``{"direction": "stereo", "tie": 0}``)."""
    recompute: str = ""
    """For metrics that are not a mean over rows: ``module:function(field,...)[key]`` names
    ``function(weights, *columns)``, which gives the metric for each row of example weights (counts; a row of ones
    is the metric itself), ``[key]`` picking it from a returned dict, so the gate can bootstrap it paired."""

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.direction == "target" and self.ideal is None:
            raise ValueError("a 'target' metric needs an ideal value")
        if self.per_example and self.recompute:
            raise ValueError("a metric is either a mean over examples (per_example) or recomputed, not both")

    def distance_from_ideal(self) -> float | None:
        """How far from the ideal on the bad side (see ``distance_from_ideal``)."""
        return distance_from_ideal(self.value, self.ideal, self.direction)

    def per_example_json(self) -> dict[str, Any] | None:
        """How the metric follows from the example rows, as stored with the result (None: it does not)."""
        if self.per_example:
            out = {"field": self.per_example, "scale": 100.0 if self.unit == "%" else 1.0}
            if self.per_example_where:
                out["where"] = dict(self.per_example_where)
            return out
        return {"recompute": self.recompute} if self.recompute else None

    def to_json(self) -> dict[str, Any]:
        out = {"value": _clean(self.value), "n": int(self.n)}
        if self.ci95 is not None:
            out["ci95"] = [_clean(self.ci95[0]), _clean(self.ci95[1])]
        if self.p_value is not None:
            out["p_value"] = _clean_p(self.p_value)
        if self.ideal is not None:
            out["ideal"] = self.ideal
        out["direction"] = self.direction
        if self.unit:
            out["unit"] = self.unit
        if self.description:
            out["description"] = self.description
        if self.scale:
            out["scale"] = self.scale
        per = self.per_example_json()
        if per:
            out["per_example"] = per
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Metric":
        ci = data.get("ci95")
        per = data.get("per_example") or {}
        return cls(value=data["value"], n=data["n"], ideal=data.get("ideal"), direction=data.get("direction", "target"),
                   ci95=tuple(ci) if ci else None, p_value=data.get("p_value"), unit=data.get("unit", ""),
                   description=data.get("description", ""), scale=data.get("scale"),
                   per_example=per.get("field", ""), per_example_where=per.get("where"),
                   recompute=per.get("recompute", ""))


def _clean(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, 6)


def _clean_p(x):
    """p-values keep 6 significant digits: rounding to 6 decimals would print a small p as 0.

    >>> _clean_p(1.2345678e-9), _clean_p(0.5)
    (1.23457e-09, 0.5)
    """
    x = float(x)
    return None if math.isnan(x) else float(f"{x:.6g}")


@dataclass(frozen=True)
class Variant:
    """A named metric definition of a task (definitions that differ between papers get distinct names)."""

    description: str
    """What the variant computes and whose definition it follows (with citation)."""
    families: tuple[str, ...]
    """Model families the variant can evaluate."""
    options: dict[str, Any] = field(default_factory=dict)
    """Variant-specific settings passed to the task."""


@dataclass
class TaskResult:
    """What ``Task.evaluate`` returns."""

    metrics: dict[str, Metric]
    """Headline metrics; the first one is the task's summary number on the leaderboard."""
    groups: dict[str, dict[str, Metric]] = field(default_factory=dict)
    """Per-group breakdown: group name -> metric name -> Metric."""
    examples: list[dict[str, Any]] = field(default_factory=list)
    """Per-example rows (each with an ``id``), kept for paired statistics and drill-down."""
    notes: list[str] = field(default_factory=list)
    """Caveats that travel with the result (e.g. synthetic data, train/test leakage)."""
    flags: dict[str, Any] = field(default_factory=dict)
    """Machine-readable caveats, e.g. ``{"leakage": true, "synthetic_data": true}``."""
    data_sha256: str = ""
    """Digest of the data files the result was computed from."""
    axis: str = ""
    """Bias axis for filtering on the leaderboard (gender, race, religion, multiple, spurious...)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": {k: v.to_json() for k, v in self.metrics.items()},
            "groups": {g: {k: v.to_json() for k, v in ms.items()} for g, ms in self.groups.items()},
            "notes": list(self.notes),
            "flags": dict(self.flags),
        }


@dataclass
class RunContext:
    """Everything a task or method needs from the runner besides the model."""

    seed: int = 0
    """Seeds sampling (bootstrap, permutation, noise, training) so a cell is reproducible."""
    batch_size: int = 32
    """Batch size for forward passes; results must not depend on it."""
    params: dict[str, Any] = field(default_factory=dict)
    """Resolved method parameters (defaults overlaid with the cell's values)."""
    cache_dir: Path | None = None
    """Where methods and tasks may cache artefacts (fine-tuned weights, vectors) keyed by their inputs."""
    progress: bool = False
    """Show progress bars."""
    n_bootstrap: int = 1000
    """Bootstrap resamples for confidence intervals."""
    method: Any = None
    """The method instance of the cell (tasks that fine-tune call its data/loss hooks)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form settings for tasks (e.g. ``max_examples`` for smoke runs)."""


class Task:
    """Base class for tasks: subclasses set the class attributes and implement ``evaluate``."""

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    families: ClassVar[tuple[str, ...]]
    variants: ClassVar[dict[str, Variant]]
    default_variant: ClassVar[str]
    citation: ClassVar[str] = ""
    axis: ClassVar[str] = ""
    fine_tunes: ClassVar[bool] = False
    """True when the task fine-tunes a downstream model and calls the method's ``transform_data`` /
    ``training_loss`` hooks; methods without ``apply`` only pair with such tasks."""

    def data_files(self, variant: str) -> list[Path]:
        """Files the result depends on (hashed into the cell key)."""
        return []

    def evaluate(self, handle, variant: str, ctx: RunContext) -> TaskResult:  # pragma: no cover - abstract
        raise NotImplementedError


class Method:
    """Base class for mitigation methods. Implement at least one hook:

    - ``apply(handle, ctx) -> handle``: change the model (weights or upstream fine-tuning);
    - ``transform_data(dataset, ctx) -> dataset``: change the downstream fine-tuning data;
    - ``training_loss(losses, batch, ctx) -> loss``: aggregate per-example downstream losses;
    - ``represent(hidden, ctx) -> hidden``: rewrite the final hidden states (batch x tokens x dim) of every forward
      pass, as bias-bench's SentenceDebias / INLP hooks do. The harness installs it after ``apply`` (which may fit
      what it needs, e.g. a bias direction, on ``self``) on a copy of the model that shares its weights, so every
      scoring primitive, sentence encodings and LM heads alike, sees the new states (``harness.models.represent``).
    """

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    families: ClassVar[tuple[str, ...]]
    kind: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    citation: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ()
    """Tasks the method applies to (empty: every task its families and hooks fit). Self-Debias, for example,
    changes next-token distributions, so it has nothing to say to sentence encodings or fine-tuned classifiers."""
    extra_keys: ClassVar[tuple[str, ...]] = ()
    """``ctx.extra`` keys ``apply`` reads: cells that differ in them get their own applied model. The runner also
    records the keys ``apply`` actually reads, so this declares and documents rather than guards."""

    def resolve_params(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """Overlay given values on the defaults; unknown names are an error."""
        given = dict(given or {})
        unknown = set(given) - set(self.params)
        if unknown:
            from biasboard.harness.errors import BiasboardError

            raise BiasboardError(f"method {self.name!r}: unknown parameter(s) {sorted(unknown)}; "
                                 f"valid: {sorted(self.params)}")
        out = dict(self.params)
        out.update(given)
        return out
