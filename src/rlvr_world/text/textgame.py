"""Text-game (ByteSized32 state prediction) world model: states, diffs, prompts, answers, metric.

A transition record follows the GPT-simulator schema: ``current_state``, ``action_state`` and
``tick_state`` (each ``{observation, look, inventory, taskDesc, lastAction, objects, max_UUID}``),
``current_score_state``, ``next_score_state``, ``game`` and ``state_id``. The task is the full
transition ``current_state -> tick_state`` plus the score.

A *game state* is ``{"game_state": [object, ..., score]}`` (the reference's layout: the score dict
is the last element). The model answers with a partial diff ``{"modified", "removed", "score"}``
that :func:`apply_diff` turns into the predicted next game state.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

SCORE_KEYS = ("score", "gameOver", "gameWon")
STATE_KEYS = ("observation", "look", "inventory", "taskDesc", "lastAction", "objects", "max_UUID")
RECORD_KEYS = ("current_state", "tick_state", "current_score_state", "next_score_state", "game")
OBJECT_KEYS = ("name", "uuid", "type", "properties", "contains")


class TransitionFormatError(ValueError):
    """A transition record is malformed; the message names the file, row and field."""


# ----------------------------------------------------------------------------- loading


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def validate_transition(record: Any, where: str = "record") -> dict:
    """Check a GPT-simulator record; raise :class:`TransitionFormatError` naming ``where`` and the field."""
    if not isinstance(record, dict):
        raise TransitionFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for key in RECORD_KEYS:
        if key not in record:
            raise TransitionFormatError(f"{where}: missing field '{key}'")
    for state_key in ("current_state", "tick_state"):
        state = record[state_key]
        if not isinstance(state, dict):
            raise TransitionFormatError(f"{where}: field '{state_key}' must be an object")
        for key in ("objects", "max_UUID", "lastAction"):
            if key not in state:
                raise TransitionFormatError(f"{where}: missing field '{state_key}.{key}'")
        if not isinstance(state["objects"], list):
            raise TransitionFormatError(f"{where}: field '{state_key}.objects' must be a list")
        for i, obj in enumerate(state["objects"]):
            if not isinstance(obj, dict):
                raise TransitionFormatError(f"{where}: field '{state_key}.objects[{i}]' must be an object")
            for key in OBJECT_KEYS:
                if key not in obj:
                    raise TransitionFormatError(f"{where}: missing field '{state_key}.objects[{i}].{key}'")
    for score_key in ("current_score_state", "next_score_state"):
        score = record[score_key]
        if not isinstance(score, dict) or any(k not in score for k in SCORE_KEYS):
            raise TransitionFormatError(
                f"{where}: field '{score_key}' must be an object with keys {', '.join(SCORE_KEYS)}"
            )
    return record


def load_transitions(path: str | Path) -> list[dict]:
    """Read GPT-simulator transitions from ``.jsonl`` or ``.jsonl.gz``; bad rows raise with file and line."""
    path = Path(path)
    records = []
    with _open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise TransitionFormatError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None
            records.append(validate_transition(record, where))
    return records


@dataclass
class GameRules:
    """Human-written rules keyed by game name (``rules/human_written_rules`` layout)."""

    object_rules: dict[str, str]
    action_rules: dict[str, str]
    score_rules: dict[str, str]

    @classmethod
    def from_dir(cls, rules_dir: str | Path) -> "GameRules":
        rules_dir = Path(rules_dir)
        loaded = {}
        for name in ("object_rules", "action_rules", "score_rules"):
            file = rules_dir / f"{name}.json"
            with open(file, encoding="utf-8") as handle:
                loaded[name] = json.load(handle)
        return cls(**loaded)

    def merged(self, other: "GameRules") -> "GameRules":
        return GameRules(
            {**self.object_rules, **other.object_rules},
            {**self.action_rules, **other.action_rules},
            {**self.score_rules, **other.score_rules},
        )

    def object_text(self, game: str) -> str:
        # The reference drops the text after the last '==========' separator.
        return "".join(self.object_rules[game].split("==========")[:-1]).strip()


# ----------------------------------------------------------------------------- states and diffs


def game_state(state: dict, score: dict) -> dict:
    """The reference's game state: the objects followed by the score dict."""
    return {"game_state": [*state["objects"], score]}


def current_game_state(record: dict) -> dict:
    return game_state(record["current_state"], record["current_score_state"])


def next_game_state(record: dict) -> dict:
    return game_state(record["tick_state"], record["next_score_state"])


def split_game_state(state: dict) -> tuple[dict, dict]:
    """``(objects by uuid, score)``; entries that are neither are ignored, like the reference."""
    objects, score = {}, {}
    for entry in state["game_state"]:
        if not isinstance(entry, dict):
            continue
        if "uuid" in entry and _hashable(entry["uuid"]):
            objects[entry["uuid"]] = entry
        elif "score" in entry:
            score = entry
    return objects, score


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def same_contains(a: Any, b: Any) -> bool:
    """``contains`` lists are compared order-insensitively."""
    if not isinstance(a, list) or not isinstance(b, list):
        return False
    return sorted(map(_canonical, a)) == sorted(map(_canonical, b))


def object_changed(before: dict, after: dict) -> bool:
    return before.get("properties") != after.get("properties") or not same_contains(
        before.get("contains", []), after.get("contains", [])
    )


def changed_properties(current: dict, nxt: dict) -> set[tuple[Any, str]]:
    """``(uuid, key)`` pairs that differ between two game states, ``key`` a property or ``contains``.

    Only objects present in both states count: properties of added or removed objects are ignored.
    """
    cur_objects, _ = split_game_state(current)
    next_objects, _ = split_game_state(nxt)
    changed = set()
    for uuid, before in cur_objects.items():
        after = next_objects.get(uuid)
        if after is None:
            continue
        props_before, props_after = before.get("properties", {}), after.get("properties", {})
        if not isinstance(props_before, dict) or not isinstance(props_after, dict):
            changed.add((uuid, "properties"))  # a malformed (predicted) object: count it, never crash
        else:
            for key in props_before.keys() | props_after.keys():
                if key not in props_before or key not in props_after or props_before[key] != props_after[key]:
                    changed.add((uuid, key))
        if not same_contains(before.get("contains", []), after.get("contains", [])):
            changed.add((uuid, "contains"))
    return changed


def is_changed(current: dict, nxt: dict) -> bool:
    """A transition is "changed" when some object property or ``contains`` differs (score excluded)."""
    return bool(changed_properties(current, nxt))


def gold_diff(current: dict, nxt: dict) -> dict:
    """The partial answer: full objects added or changed, uuids removed, the score if it changed."""
    cur_objects, cur_score = split_game_state(current)
    next_objects, next_score = split_game_state(nxt)
    modified = [obj for uuid, obj in next_objects.items() if uuid not in cur_objects or object_changed(cur_objects[uuid], obj)]
    removed = [uuid for uuid in cur_objects if uuid not in next_objects]
    score = dict(next_score) if next_score != cur_score else {}
    return {"modified": modified, "removed": removed, "score": score}


def empty_diff() -> dict:
    """The "nothing changes" answer."""
    return {"modified": [], "removed": [], "score": {}}


class AnswerFormatError(ValueError):
    """The model's answer is not a usable partial diff."""


def apply_diff(current: dict, diff: Any) -> dict:
    """Apply a partial diff to a game state and return the predicted next game state.

    Objects in ``modified`` replace the current object with the same uuid; those with a new uuid
    are added (the reference drops them, so object-creating transitions could never score).
    An empty ``score`` keeps the current score; a missing one predicts no score at all.
    Raises :class:`AnswerFormatError` when ``diff`` lacks ``modified``/``removed`` or they are not lists.
    """
    if not isinstance(diff, dict) or "modified" not in diff or "removed" not in diff:
        raise AnswerFormatError("the answer needs the keys 'modified' and 'removed'")
    modified, removed = diff["modified"], diff["removed"]
    if not isinstance(removed, list):
        removed = [removed]
    if not isinstance(modified, list):
        raise AnswerFormatError("'modified' must be a list of objects")
    replacements = {}
    for obj in modified:
        if isinstance(obj, dict) and "uuid" in obj and _hashable(obj["uuid"]):
            replacements[obj["uuid"]] = obj
    removed_set = {uuid for uuid in removed if _hashable(uuid)}

    cur_objects, cur_score = split_game_state(current)
    objects = []
    for uuid, obj in cur_objects.items():
        if uuid in removed_set:
            continue
        objects.append(replacements.pop(uuid, obj))
    objects.extend(obj for uuid, obj in replacements.items() if uuid not in removed_set)

    if "score" not in diff:
        return {"game_state": objects}
    score = diff["score"]
    if isinstance(score, dict) and score:
        objects.append(score if "score" in score else {"score": None, **score})
    elif isinstance(score, dict):
        objects.append(cur_score)
    return {"game_state": objects}


# ----------------------------------------------------------------------------- metric


@dataclass(frozen=True)
class StateScore:
    """Property-level comparison of a predicted game state with the gold one."""

    correct: int
    errors: int
    score_correct: int
    score_errors: int
    changed_correct: int = 0
    changed_total: int = 0

    @property
    def item_score(self) -> float:
        total = self.correct + self.errors
        return self.correct / total if total else 1.0

    @property
    def score_score(self) -> float:
        total = self.score_correct + self.score_errors
        return self.score_correct / total if total else 1.0

    @property
    def is_correct(self) -> bool:
        return self.errors == 0 and self.score_errors == 0

    @property
    def acc_changed(self) -> float | None:
        """Fraction of gold-changed properties predicted exactly; None when nothing changed."""
        return self.changed_correct / self.changed_total if self.changed_total else None


def _values_equal(gold: Any, pred: Any) -> bool:
    # JSON has no tuples; list/tuple equality and nested dicts are what == does already.
    try:
        return gold == pred
    except Exception:  # pathological values never crash a run
        return False


def same_entry(gold: dict, pred: dict, key: str) -> bool:
    """Whether one object's ``key`` (a property or ``contains``) is predicted exactly.

    A property the gold removed is right when the prediction removed it too.
    """
    if key == "contains":
        return same_contains(gold.get("contains", []), pred.get("contains"))
    gold_props, pred_props = gold.get("properties", {}), pred.get("properties")
    if not isinstance(pred_props, dict):
        return False
    if key in gold_props and key in pred_props:
        return _values_equal(gold_props[key], pred_props[key])
    return key not in gold_props and key not in pred_props


def score_state(prediction: dict, gold: dict, gold_changed: Iterable[tuple[Any, str]] = ()) -> StateScore:
    """Compare ``prediction`` with ``gold`` property by property (the reference's semantics).

    Every property of every gold object counts once and ``contains`` once per object; a missing
    object or a missing ``properties`` counts as one error; extra predicted objects are free.
    ``gold_changed`` lists the ``(uuid, key)`` pairs that changed from the current state; the
    fraction of them predicted exactly is the task-specific reward's ``acc_changed`` term.
    """
    gold_objects, gold_score = split_game_state(gold)
    pred_objects, pred_score = split_game_state(prediction)
    correct = errors = 0
    for uuid, target in gold_objects.items():
        pred = pred_objects.get(uuid)
        if pred is None:
            errors += 1
            continue
        target_props, pred_props = target.get("properties", {}), pred.get("properties")
        if not isinstance(pred_props, dict):
            errors += 1
        else:
            for key, value in target_props.items():
                if key in pred_props and _values_equal(value, pred_props[key]):
                    correct += 1
                else:
                    errors += 1
        if "contains" in pred and same_contains(target.get("contains", []), pred["contains"]):
            correct += 1
        else:
            errors += 1

    score_correct = score_errors = 0
    for key, value in gold_score.items():
        if key in pred_score and _values_equal(value, pred_score[key]):
            score_correct += 1
        else:
            score_errors += 1

    changed_correct = changed_total = 0
    for uuid, key in gold_changed:
        changed_total += 1
        target, pred = gold_objects.get(uuid), pred_objects.get(uuid)
        if target is None or pred is None:
            continue  # a missing object predicted no change at all
        changed_correct += same_entry(target, pred, key)
    return StateScore(correct, errors, score_correct, score_errors, changed_correct, changed_total)


# ----------------------------------------------------------------------------- answers

FINAL_ANSWER_MARKERS = (
    "The final answer is:",
    "the final answer is:",
    "The final state is:",
    "the final state is:",
    "The final game state is:",
    "the final game state is:",
)
_JSON_BLOCK = re.compile(r"```json\s*([\s\S]*?)\s*```")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_DECODER = json.JSONDecoder()
ANSWER_PREFIX = "The final answer is: "


def answer_text(text: str) -> str:
    """The reference's extraction: after the last final-answer marker, else the last ```json block."""
    for marker in FINAL_ANSWER_MARKERS:
        if marker in text:
            return text.split(marker)[-1].strip()
    blocks = _JSON_BLOCK.findall(text)
    if blocks and len(blocks[-1]) >= 10:
        return blocks[-1]
    return text


def _close_truncated(text: str) -> str:
    """Close unbalanced brackets and an open string so a cut-off answer still parses."""
    stack, in_string, escaped = [], False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack and stack[-1] == char:
            stack.pop()
    tail = '"' if in_string else ""
    body = (text + tail).rstrip().rstrip(",").rstrip(":")
    return body + "".join(reversed(stack))


def repair_json(text: str) -> Any:
    """Parse a model's JSON: Python literals, trailing commas, single quotes, prose around, truncation.

    Returns the first JSON value that starts at the first ``{``, or None. Never raises.
    """
    try:
        start = text.find("{")
        if start < 0:
            return None
        # The reference replaces Python literals textually, inside strings too; so do we.
        text = text[start:].replace("True", "true").replace("False", "false").replace("None", "null")
        uncommaed = _TRAILING_COMMA.sub(r"\1", text)
        # Python-style single quotes: the prompt shows states as Python dicts.
        for candidate in (text, uncommaed, _close_truncated(uncommaed), _close_truncated(uncommaed.replace("'", '"'))):
            try:
                return _DECODER.raw_decode(candidate)[0]  # trailing prose is ignored
            except (json.JSONDecodeError, RecursionError):
                continue
        return None
    except (RecursionError, ValueError):
        return None


def extract_answer(text: Any) -> dict | None:
    """The partial diff in a model's output, or None if it has none. Never raises."""
    if not isinstance(text, str):
        return None
    parsed = repair_json(answer_text(text))
    if not isinstance(parsed, dict) or "modified" not in parsed or "removed" not in parsed:
        return None
    return parsed


def format_answer(diff: dict, state_format: str = "json") -> str:
    """The SFT target: the final-answer marker followed by the diff."""
    return ANSWER_PREFIX + format_state(diff, state_format)


def format_state(value: Any, state_format: str = "python") -> str:
    """How states appear in prompts: the reference prints Python dicts; ``json`` is compact JSON."""
    if state_format == "python":
        return str(value)
    if state_format == "json":
        return json.dumps(value, separators=(", ", ": "))
    if state_format == "json_min":  # no spaces: about 12% fewer tokens for CPU-scale pre-trained LMs
        return json.dumps(value, separators=(",", ":"))
    raise ValueError(f"state_format must be 'python', 'json' or 'json_min', got {state_format!r}")


# ----------------------------------------------------------------------------- prompts

INSTRUCTION = (
    "You are a simulator of a text game. Read the task description of a text game. Given the current "
    "game state in JSON, you need to decide the new game state after taking an action including the "
    "game score.\n"
)
UUID_RULE = (
    "You may need to create new objects when you predict the new game state. You should assign the uuid "
    "of new objects starting from the UUID base given in the instructions."
)
ANSWER_SPEC = (
    "Your response should be in the JSON format. It should have three keys: 'modified', 'removed', and "
    "'score'. The 'modified' key stores a list of all the object states that are added or changed after "
    "taking the action. Keep it an empty list if no object is added or modified. The 'removed' key stores "
    "a list of uuids of the objects that are removed. Keep it an empty list if no object is removed. The "
    "'score' key stores a JSON with three keys: 'score', 'gameOver', and 'gameWon'. 'score' stores the "
    "current game score, 'gameOver' stores a bool value on whether the game is over, and 'gameWon' stores "
    "a bool value on whether the game is won. \n"
)
TICK_NOTE = (
    "Note that while game states can be changed by actions, some game states may change over the time, "
    "which is described in the tick function of each object class. \n"
)
# The reference's instruction, UUID rule, answer spec and tick note in a third of the tokens (CPU scale).
SHORT_INSTRUCTION = (
    "Simulate a text game. Given the game state in JSON and an action, predict the state after the action "
    "and one time tick. Answer with JSON keys 'modified' (every added or changed object, in full), 'removed' "
    "(uuids of removed objects) and 'score' (the keys of score, gameOver, gameWon that change). New objects "
    "take uuids from the UUID base.\n"
)
FINAL_INSTRUCTION = "\nPlease make sure to clearly indicate your answer by starting with 'The final answer is:'.\n"
EXAMPLE_GAME = "dishwasher"


@dataclass
class PromptOptions:
    """Switches for the prompt: the reference uses everything; tiny models need short prompts."""

    include_rules: bool = True
    include_examples: bool = True
    state_format: str = "python"  # "python" (reference), "json" or "json_min"
    short_instruction: bool = False  # SHORT_INSTRUCTION instead of the reference's (without examples only)


def _rules_text(rules: GameRules, game: str, example: bool) -> str:
    suffix = " in the example game" if example else ""
    score_title = "the score function of the example game" if example else "the game score function"
    return (
        f"Here are the descriptions of all game objects properties{suffix}:\n{rules.object_text(game)}\n"
        f"Here are the descriptions of all game actions{suffix}:\n{rules.action_rules[game].strip()}\n"
        f"Here is a description of {score_title}:\n{rules.score_rules[game].strip()}\n"
    )


def _example_text(example: dict, fmt: str) -> str:
    current, nxt = current_game_state(example), next_game_state(example)
    return (
        f"Here is the game state:\n{format_state(current, fmt)}\n\n"
        f"The current game UUID base is {example['current_state']['max_UUID']}\n"
        f"The action to take is: {example['tick_state']['lastAction']}\n"
        f"The expected response is:\n{format_state(gold_diff(current, nxt), fmt)}\n\n"
    )


def build_examples_text(examples: dict, rules: GameRules | None, options: PromptOptions) -> str:
    """The two in-context examples (one action change, one tick change) from ``examples.json['full']``."""
    action_example, tick_example = examples["full"]["action"], examples["full"]["tick"]
    text = TICK_NOTE + "Here are two examples of both cases. Both examples are from the same example game.\n"
    text += f"Example game task description:\n{action_example['current_state']['taskDesc']}\n"
    if options.include_rules and rules is not None:
        text += _rules_text(rules, action_example.get("game", EXAMPLE_GAME), example=True)
    text += "In the first example, the game state is changed by an action:\n"
    text += _example_text(action_example, options.state_format)
    text += (
        "In the second example from the same example game, the game state is changed over the time. Note "
        "that while in this example the game state is changed by time only, it is possible that a game "
        "state is changed by both an action and time.\n"
    )
    text += _example_text(tick_example, options.state_format)
    return text


def build_prompt(
    record: dict,
    rules: GameRules | None = None,
    examples: dict | None = None,
    options: PromptOptions | None = None,
    examples_text: str | None = None,
) -> str:
    """The reference's full-transition prompt (plain text) for one record.

    ``examples_text`` may be passed pre-built (it is the same for every record) to save time.
    """
    options = options or PromptOptions()
    if options.include_rules and rules is None:
        raise ValueError("include_rules=True needs the game rules")
    if options.short_instruction and options.include_examples:
        raise ValueError("short_instruction replaces the instruction the in-context examples rely on")
    if options.short_instruction:
        prompt = SHORT_INSTRUCTION
    elif options.include_examples:
        if examples_text is None:
            if examples is None:
                raise ValueError("include_examples=True needs the in-context examples (examples.json)")
            examples_text = build_examples_text(examples, rules, options)
        prompt = INSTRUCTION + UUID_RULE + ANSWER_SPEC + examples_text
    else:
        prompt = INSTRUCTION + UUID_RULE + ANSWER_SPEC + TICK_NOTE
    game = record["game"]
    prompt += "Here is the game that you need to simulate:\n"
    prompt += f"Task Description:\n{record['current_state'].get('taskDesc', '')}\n"
    if options.include_rules:
        if game not in rules.object_rules:
            raise KeyError(f"no rules for game '{game}'")
        prompt += (
            f"Here are the descriptions of all game objects properties:\n{rules.object_text(game)}\n"
            f"Here are the descriptions of all game actions:\n{rules.action_rules[game].strip()}\n"
            f"Here is a description of the game score function:\n{rules.score_rules[game].strip()}\n"
        )
    prompt += f"Here is the game state:\n{format_state(current_game_state(record), options.state_format)}\n\n"
    prompt += f"The current game UUID base is {record['current_state']['max_UUID']}\n"
    prompt += f"The action to take is:\n{record['tick_state']['lastAction']}\n"
    return prompt + FINAL_INSTRUCTION


def chat_prompt(prompt: str) -> list[dict]:
    """The chat-message form used by the Hub dataset and by TRL's conversational datasets."""
    return [{"role": "user", "content": prompt}]
