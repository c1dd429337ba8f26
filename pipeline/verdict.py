"""Which setting of a sweep is best, named only when the noise between seeds allows it.

One seed per setting cannot tell a better setting from a luckier seed: on
full MNIST the seed alone moves eval accuracy by about as much as the
thresholds do (docs/sweep_explode.md). With several seeds, each setting is
compared with the one of highest mean eval accuracy by Welch's t-test (two
unequal variances, two-sided, at 0.05). A setting is *the* best only when
every other one differs from it beyond that; otherwise the settings that
cannot be told apart are listed, and the one recommended among them is the
lightest touch: the one that clips the fewest steps, then one that needs no
threshold to be chosen.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Dict, List, Optional, Sequence

ALPHA = 0.05
RULE = "Welch's t-test (two-sided, p < 0.05) of each setting's eval accuracies over seeds against the top setting's"
SINGLE_SEED_RULE = ("one seed per setting, so the seed noise is unknown: the highest eval accuracy, not tested against "
                    "it (sweep several seeds, e.g. --seeds 0,1,2,3, to test it)")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting of the grid over its seeds (per-seed lists in the seeds' order)."""

    name: str
    strategy: str
    threshold: Optional[float]  # None: its strategy reads no threshold
    learning_rate: float
    divisor: float
    seeds: List[int]
    accuracies: List[Optional[float]]  # eval accuracy; None: not evaluated
    clipped_fractions: List[Optional[float]]  # None: no gradient report
    diverged: List[bool]

    @property
    def evaluated(self) -> List[float]:
        return [a for a in self.accuracies if a is not None and math.isfinite(a)]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.evaluated)

    @property
    def clipped_fraction(self) -> float:
        """Mean over seeds; a setting without reports counts as clipping every step (never the lighter touch)."""
        known = [c for c in self.clipped_fractions if c is not None]
        return statistics.fmean(known) if known else 1.0

    @property
    def needs_threshold(self) -> bool:
        return self.threshold is not None

    def to_dict(self) -> Dict[str, Any]:
        """The summary's entry: the accuracy's mean, standard deviation, minimum and maximum; the rest per seed."""
        scores = self.evaluated
        return {
            "setting": self.name, "strategy": self.strategy, "threshold": self.threshold,
            "learning_rate": self.learning_rate, "divisor": self.divisor, "seeds": self.seeds,
            "eval_accuracy": {
                "mean": statistics.fmean(scores) if scores else None,
                "std": statistics.stdev(scores) if len(scores) > 1 else None,
                "min": min(scores) if scores else None, "max": max(scores) if scores else None,
            },
            "eval_accuracies": self.accuracies, "clipped_fractions": self.clipped_fractions,
            "diverged_seeds": sum(self.diverged),
        }


@dataclasses.dataclass(frozen=True)
class Verdict:
    best: Optional[str]  # the winner, or the recommendation among the settings that cannot be told apart
    winner: bool  # True: ``best`` beats every other setting beyond the seeds' noise
    tied: List[str]  # the settings that cannot be told apart from the top one (itself first); [best] for a winner
    p_values: Dict[str, float]  # each other setting's p-value against the top one (empty with one seed)
    rule: str
    why: str = ""  # what the recommended setting has for it, among the tied

    def sentence(self) -> str:
        """The verdict as the report and the terminal say it."""
        if self.best is None:
            return "no setting was evaluated"
        if not self.p_values:
            return f"{self.best}, the highest eval accuracy ({SINGLE_SEED_RULE})"
        if self.winner:
            return f"{self.best}: better than every other setting beyond the seeds' noise ({self.rule})"
        return (f"none beyond the seeds' noise: {', '.join(self.tied)} cannot be told apart ({self.rule}); "
                f"recommended among them: {self.best}, {self.why}")


def welch_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test that ``a`` and ``b`` have the same mean (each of 2+ values).
    With no spread in either, equal means are p = 1 and different ones p = 0."""
    from scipy import stats  # noqa: PLC0415  (a second's import, for sweeps only)

    var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    difference = statistics.fmean(a) - statistics.fmean(b)
    if var_a + var_b == 0:
        return 1.0 if difference == 0 else 0.0
    t = difference / math.sqrt(var_a + var_b)
    freedom = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
    return float(2 * stats.t.sf(abs(t), freedom))


def decide(settings: Sequence[Setting]) -> Verdict:
    """The verdict over the settings that were evaluated (the others are not candidates)."""
    scored = [s for s in settings if s.evaluated]
    if not scored:
        return Verdict(None, False, [], {}, RULE)
    top = max(scored, key=lambda s: (s.mean, -s.clipped_fraction))
    if any(len(s.evaluated) < 2 for s in scored):
        return Verdict(top.name, False, [top.name], {}, SINGLE_SEED_RULE)
    p_values = {s.name: welch_p_value(top.evaluated, s.evaluated) for s in scored if s is not top}
    tied = [top] + [s for s in scored if s is not top and p_values[s.name] >= ALPHA]
    chosen = min(tied, key=lambda s: (s.clipped_fraction, s.needs_threshold, -s.mean))
    why = (f"the one that clips least ({chosen.clipped_fraction:.1%} of steps)"
           + ("" if chosen.needs_threshold else " and needs no threshold"))
    return Verdict(chosen.name, len(tied) == 1, [s.name for s in tied], p_values, RULE, why)


def settings_of(points: Sequence[Dict[str, Any]]) -> List[Setting]:
    """The summary's points (one per setting and seed) gathered by setting, in the grid's order."""
    grouped: Dict[str, List[Dict[str, Any]]] = {}
    for point in points:
        grouped.setdefault(point["setting"], []).append(point)
    settings = []
    for name, members in grouped.items():
        reports = [m["gradient_report"] or {} for m in members]
        settings.append(Setting(
            name, *(members[0][key] for key in ("strategy", "threshold", "learning_rate", "divisor")),
            [m["seed"] for m in members],
            [m["eval_accuracy"] for m in members], [r.get("clipped_fraction") for r in reports],
            [r.get("diverged_at_step") is not None for r in reports],
        ))
    return settings
