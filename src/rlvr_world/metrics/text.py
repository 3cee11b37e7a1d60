"""Text-game accuracy on unchanged / changed / all transitions (the paper's Table 1 metrics)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

from rlvr_world.text.textgame import (
    AnswerFormatError,
    StateScore,
    apply_diff,
    changed_properties,
    extract_answer,
    score_state,
)


@lru_cache(maxsize=8192)
def parse_state(text: str) -> dict:
    """Parse a JSON game state column once; GRPO scores the same prompt G times.

    Callers must treat the result as read-only: it is shared through the cache.
    """
    return json.loads(text)


@lru_cache(maxsize=8192)
def gold_changes(current_text: str, gold_text: str) -> frozenset:
    """The ``(uuid, key)`` pairs the gold transition changes, computed once per prompt."""
    return frozenset(changed_properties(parse_state(current_text), parse_state(gold_text)))


@dataclass(frozen=True)
class TransitionResult:
    """How one predicted answer scores on one transition; ``score`` is None for a format error."""

    changed: bool
    score: StateScore | None

    @property
    def format_error(self) -> bool:
        return self.score is None

    @property
    def correct(self) -> bool:
        return self.score is not None and self.score.is_correct


def score_answer(diff: dict | None, current_text: str, gold_text: str) -> TransitionResult:
    """Score a parsed partial diff (None = unparsable) against the gold next state (JSON strings)."""
    changes = gold_changes(current_text, gold_text)
    if diff is None:
        return TransitionResult(bool(changes), None)
    try:
        predicted = apply_diff(parse_state(current_text), diff)
    except AnswerFormatError:
        return TransitionResult(bool(changes), None)
    return TransitionResult(bool(changes), score_state(predicted, parse_state(gold_text), changes))


def score_completion(text: str, current_text: str, gold_text: str) -> TransitionResult:
    """Extract the answer from model output and score it; never raises on model output."""
    return score_answer(extract_answer(text), current_text, gold_text)


@dataclass
class AccuracyCounter:
    """Accumulates per-transition results into the paper's three accuracies (in percent)."""

    results: list[TransitionResult] = field(default_factory=list)

    def add(self, result: TransitionResult) -> None:
        self.results.append(result)

    def summary(self) -> dict:
        def pct(num: int, den: int) -> float | None:
            return round(100.0 * num / den, 2) if den else None

        changed = [r for r in self.results if r.changed]
        unchanged = [r for r in self.results if not r.changed]
        n_correct = sum(r.correct for r in self.results)
        n_changed_correct = sum(r.correct for r in changed)
        n_unchanged_correct = sum(r.correct for r in unchanged)
        n_format_errors = sum(r.format_error for r in self.results)
        return {
            "accuracy_overall": pct(n_correct, len(self.results)),
            "accuracy_unchanged": pct(n_unchanged_correct, len(unchanged)),
            "accuracy_changed": pct(n_changed_correct, len(changed)),
            "format_error_rate": pct(n_format_errors, len(self.results)),
            "num_transitions": len(self.results),
            "num_unchanged": len(unchanged),
            "num_changed": len(changed),
            "num_correct": n_correct,
            "num_unchanged_correct": n_unchanged_correct,
            "num_changed_correct": n_changed_correct,
            "num_format_errors": n_format_errors,
        }
