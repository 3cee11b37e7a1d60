"""Web-page world-model metric: micro precision / recall / F1 of exact item lines (the paper's Table 2).

Per transition, lines are matched exactly within each section (``New items``, ``Deleted items``,
``Updated items``; ``None`` is a line like any other) and the matches and line counts are summed over
the sections: P = matches / predicted lines, R = matches / gold lines, F1 = 2PR / (P + R), and 0
when P + R = 0. Lines are counted as written: unlike the reference, which keeps each section as a set,
repeating a line does not come for free (it costs precision).

Score text decoded *without* special tokens: the reference decodes with them and its last line
carries the EOS string, so that line can never match.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from rlvr_world.text.webpage import SECTIONS, parse_changes


@dataclass(frozen=True)
class LineScore:
    """Matched, predicted and gold line counts of one answer; ``format_error`` if it has no section."""

    matches: int
    predicted: int
    gold: int
    format_error: bool = False

    @property
    def precision(self) -> float:
        return self.matches / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matches / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def exact(self) -> bool:
        return not self.format_error and self.matches == self.predicted == self.gold


@lru_cache(maxsize=8192)
def gold_sections(gold_text: str) -> dict[str, Counter]:
    """The gold changes as a line multiset per section, parsed once (GRPO scores a prompt G times)."""
    parsed = parse_changes(gold_text)
    if parsed is None:
        raise ValueError(f"the gold changes have no section header: {gold_text[:80]!r}")
    return {section: Counter(parsed[section]) for section in SECTIONS}


def score_changes(predicted: dict[str, list[str]] | None, gold_text: str) -> LineScore:
    """Score parsed sections (None = unparsable) against the gold answer text."""
    gold = gold_sections(gold_text)
    n_gold = sum(sum(c.values()) for c in gold.values())
    if predicted is None:
        return LineScore(0, 0, n_gold, format_error=True)
    matches = n_pred = 0
    for section in SECTIONS:
        lines = Counter(predicted.get(section, []))
        n_pred += sum(lines.values())
        matches += sum((lines & gold[section]).values())
    return LineScore(matches, n_pred, n_gold)


def score_completion(text: str, gold_text: str) -> LineScore:
    """Parse a model's output and score it; never raises on model output."""
    return score_changes(parse_changes(text), gold_text)


@dataclass
class F1Counter:
    """Mean per-transition precision, recall and F1 (percent), the exact-match and format-error rates."""

    scores: list[LineScore] = field(default_factory=list)

    def add(self, score: LineScore) -> None:
        self.scores.append(score)

    def summary(self) -> dict:
        n = len(self.scores)

        def pct(values) -> float | None:
            values = list(values)
            return round(100.0 * sum(values) / n, 2) if n else None

        return {
            "precision": pct(s.precision for s in self.scores),
            "recall": pct(s.recall for s in self.scores),
            "f1": pct(s.f1 for s in self.scores),
            "exact_match": pct(s.exact for s in self.scores),
            "format_error_rate": pct(s.format_error for s in self.scores),
            "num_transitions": n,
            "num_format_errors": sum(s.format_error for s in self.scores),
            "predicted_lines": sum(s.predicted for s in self.scores),
            "gold_lines": sum(s.gold for s in self.scores),
            "matched_lines": sum(s.matches for s in self.scores),
        }
