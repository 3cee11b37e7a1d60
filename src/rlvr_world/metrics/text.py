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
    same_contains,
    same_entry,
    score_state,
    split_game_state,
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


@dataclass(frozen=True)
class AnswerErrors:
    """Where a parsed answer departs from the gold next state, judged against the current state.

    ``missed``, ``wrong_value`` and ``spurious`` hold ``(uuid, key)`` pairs (``key`` a property or
    ``contains``): the gold changes it and the answer keeps it; both change it, to different values;
    the answer changes it and the gold keeps it.
    """

    missed: frozenset
    wrong_value: frozenset
    spurious: frozenset
    wrong_objects: bool  # a gold object is missing, or an object the gold creates is predicted wrong
    wrong_score: bool
    invented_names: int  # ``contains`` entries naming nothing in the current or the gold state
    no_change: bool  # the answer changes nothing at all

    @property
    def kinds(self) -> dict[str, bool]:
        return {"no_change": self.no_change, "missed_change": bool(self.missed),
                "wrong_value": bool(self.wrong_value), "spurious_change": bool(self.spurious),
                "wrong_score": self.wrong_score, "wrong_objects": self.wrong_objects,
                "invented_names": self.invented_names > 0}


def diagnose_answer(diff: dict | None, current_text: str, gold_text: str) -> AnswerErrors | None:
    """Classify the errors of a parsed partial diff (None for a format error). Never raises on model output."""
    if diff is None:
        return None
    current, gold = parse_state(current_text), parse_state(gold_text)
    try:
        predicted = apply_diff(current, diff)
    except AnswerFormatError:
        return None
    cur_objects, _ = split_game_state(current)
    gold_objects, gold_score = split_game_state(gold)
    pred_objects, pred_score = split_game_state(predicted)
    gold_changed = gold_changes(current_text, gold_text)
    pred_changed = changed_properties(current, predicted)
    both = gold_changed & pred_changed
    wrong_value = frozenset(k for k in both if not same_entry(gold_objects[k[0]], pred_objects[k[0]], k[1]))
    wrong_objects = any(
        uuid not in pred_objects
        or (uuid not in cur_objects and not (same_entry(obj, pred_objects[uuid], "contains")
                                             and obj.get("properties") == pred_objects[uuid].get("properties")))
        for uuid, obj in gold_objects.items()
    )
    known = set()
    for obj in (*cur_objects.values(), *gold_objects.values()):
        known.add(obj.get("name"))
        known.update(entry for entry in obj.get("contains", []) if isinstance(entry, str))
    invented = sum(
        1
        for uuid, obj in pred_objects.items()
        if uuid in gold_objects and isinstance(obj.get("contains"), list)
        and not same_contains(gold_objects[uuid].get("contains", []), obj["contains"])
        for entry in obj["contains"]
        if not (isinstance(entry, str) and entry in known)
    )
    return AnswerErrors(
        missed=frozenset(gold_changed - pred_changed),
        wrong_value=wrong_value,
        spurious=frozenset(pred_changed - gold_changed),
        wrong_objects=wrong_objects,
        wrong_score=any(pred_score.get(key) != value for key, value in gold_score.items()),
        invented_names=invented,
        no_change=not pred_changed and pred_objects.keys() == cur_objects.keys(),
    )


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
