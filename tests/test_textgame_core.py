import copy
import gzip
import json

import pytest

from helpers import REAL_EXAMPLES, REAL_RULES, REAL_TEST
from rlvr_world.data.textgame import load_examples
from rlvr_world.metrics.text import AccuracyCounter, diagnose_answer, score_completion
from rlvr_world.text.textgame import (
    GameRules,
    PromptOptions,
    TransitionFormatError,
    apply_diff,
    build_prompt,
    changed_properties,
    current_game_state,
    empty_diff,
    extract_answer,
    format_answer,
    gold_diff,
    is_changed,
    load_transitions,
    next_game_state,
    score_state,
)


@pytest.fixture(scope="module")
def records():
    return load_transitions(REAL_TEST)


@pytest.fixture(scope="module")
def rules():
    return GameRules.from_dir(REAL_RULES)


def _state(*objects, score=0):
    return {"game_state": [*objects, {"score": score, "gameOver": False, "gameWon": False}]}


def _obj(uuid, contains=(), **props):
    return {"name": f"o{uuid} (ID: {uuid})", "uuid": uuid, "type": "T", "properties": props, "contains": list(contains)}


def test_real_test_set_counts(records):
    assert len(records) == 2954
    assert len({r["game"] for r in records}) == 31


def test_oracle_scores_100_and_copy_baseline_on_real_test_set(records):
    oracle, copy_ = AccuracyCounter(), AccuracyCounter()
    for r in records:
        cur, nxt = current_game_state(r), next_game_state(r)
        cur_text, nxt_text = json.dumps(cur), json.dumps(nxt)
        oracle.add(score_completion(format_answer(gold_diff(cur, nxt)), cur_text, nxt_text))
        copy_.add(score_completion(format_answer(empty_diff()), cur_text, nxt_text))
    o, c = oracle.summary(), copy_.summary()
    assert o["accuracy_overall"] == o["accuracy_unchanged"] == o["accuracy_changed"] == 100.0
    assert (c["num_unchanged"], c["num_changed"]) == (1818, 1136)
    # "Nothing changes" is right on unchanged transitions whose score also stays put, never on changed ones.
    assert c["accuracy_overall"] == 59.04
    assert c["accuracy_unchanged"] == 95.93
    assert c["accuracy_changed"] == 0.0
    assert c["format_error_rate"] == 0.0


def test_object_creating_transitions_are_scorable(records):
    creating = [r for r in records
                if {o["uuid"] for o in r["tick_state"]["objects"]} - {o["uuid"] for o in r["current_state"]["objects"]}]
    assert len(creating) == 51  # the reference's apply step drops these new objects
    for r in creating:
        cur, nxt = current_game_state(r), next_game_state(r)
        assert score_state(apply_diff(cur, gold_diff(cur, nxt)), nxt).is_correct


def test_gold_diff_and_apply_on_small_states():
    cur = _state(_obj(1, ["o2 (ID: 2)"], isOpen=False), _obj(2, on=False), _obj(3, temp=20))
    nxt = _state(_obj(1, ["o2 (ID: 2)"], isOpen=True), _obj(2, on=False), _obj(4, made=True), score=1)
    diff = gold_diff(cur, nxt)
    assert [o["uuid"] for o in diff["modified"]] == [1, 4]
    assert diff["removed"] == [3]
    assert diff["score"] == {"score": 1, "gameOver": False, "gameWon": False}
    assert score_state(apply_diff(cur, diff), nxt).is_correct
    assert changed_properties(cur, nxt) == {(1, "isOpen")}
    # An empty score keeps the current one; a missing score predicts none (score errors).
    kept = apply_diff(cur, {"modified": [], "removed": [], "score": {}})
    assert kept["game_state"][-1]["score"] == 0
    assert score_state(apply_diff(cur, {"modified": [], "removed": []}), cur).score_errors == 3


def test_metric_counts_properties_contains_and_missing_objects():
    gold = _state(_obj(1, ["a", "b"], x=1, y=[1, 2]), _obj(2, z="s"))
    pred = _state(_obj(1, ["b", "a"], x=1, y=[1, 2]))  # contains order is free; object 2 missing
    s = score_state(pred, gold)
    assert (s.correct, s.errors) == (3, 1)
    assert s.item_score == 0.75 and s.score_score == 1.0 and not s.is_correct
    wrong = _state(_obj(1, ["a"], x=2), _obj(2, z="s"), _obj(9, extra=True))  # extra objects are free
    s = score_state(wrong, gold)
    assert (s.correct, s.errors) == (2, 3)  # z and contains of 2; x wrong, y missing, contains of 1 wrong


def test_changed_flag_ignores_score_and_added_objects():
    cur = _state(_obj(1, x=1))
    assert not is_changed(cur, _state(_obj(1, x=1), score=5))
    assert not is_changed(cur, _state(_obj(1, x=1), _obj(2, y=1)))
    assert is_changed(cur, _state(_obj(1, x=2)))
    assert is_changed(cur, _state(_obj(1, ["n"], x=1)))


@pytest.mark.parametrize(
    "text, expected_removed",
    [
        ('reasoning... The final answer is: {"modified": [], "removed": [3], "score": {}}', [3]),
        ('The final answer is: {"modified": [], "removed": [1]}\nthe final answer is: {"modified": [], "removed": [2],}', [1]),
        ('thinking\n```json\n{"modified": [], "removed": [5], "score": {}}\n```', [5]),
        ("The final state is: {'modified': [], 'removed': [7], 'score': {}}", [7]),
        ('The final answer is: {"modified": [{"uuid": 1, "properties": {"on": True}}], "removed": [4], "score": {"gameWon": False', [4]),
        ('{"modified": [], "removed": [6], "score": None}', [6]),
    ],
)
# Markers are tried in the reference's order, so the capitalised one wins over a later lower-case one.
def test_extract_answer_follows_the_reference(text, expected_removed):
    answer = extract_answer(text)
    assert answer is not None and answer["removed"] == expected_removed


@pytest.mark.parametrize("text", ["", "no json here", '{"modified": []}', "The final answer is: [1, 2]", None, 42,
                                  '{"removed": [], "score": {}}', "{" * 5000])
def test_unusable_answers_give_none(text):
    assert extract_answer(text) is None


def test_diagnose_answer_names_each_kind_of_error():
    # The agent (1) takes o3 out of the room (2); the score rises.
    cur = _state(_obj(1, [], holding=False), _obj(2, ["o3 (ID: 3)", "o4 (ID: 4)"], lit=True), _obj(3, hot=False))
    nxt = _state(_obj(1, ["o3 (ID: 3)"], holding=True), _obj(2, ["o4 (ID: 4)"], lit=True), _obj(3, hot=False), score=1)
    cur_text, gold_text = json.dumps(cur), json.dumps(nxt)
    gold = gold_diff(cur, nxt)
    assert diagnose_answer(gold, cur_text, gold_text) == diagnose_answer(gold, cur_text, gold_text)
    right = diagnose_answer(gold, cur_text, gold_text)
    assert not any(right.kinds.values()) and right.invented_names == 0

    nothing = diagnose_answer(empty_diff(), cur_text, gold_text)
    assert nothing.no_change and nothing.wrong_score and not nothing.spurious
    assert nothing.missed == {(1, "contains"), (1, "holding"), (2, "contains")}

    # The agent holds an object that exists nowhere, the room keeps o3, and the light goes out.
    wrong = {"modified": [_obj(1, ["unicorn (ID: 9)"], holding=True), _obj(2, ["o3 (ID: 3)", "o4 (ID: 4)"], lit=False)],
             "removed": [3], "score": gold["score"]}
    errors = diagnose_answer(wrong, cur_text, gold_text)
    assert errors.wrong_value == {(1, "contains")}
    assert errors.missed == {(2, "contains")} and errors.spurious == {(2, "lit")}
    assert errors.wrong_objects and not errors.wrong_score and not errors.no_change  # o3 removed
    assert errors.invented_names == 1
    assert diagnose_answer(None, cur_text, gold_text) is None
    # Malformed objects are classified, never a crash.
    odd = diagnose_answer({"modified": [{"uuid": 1, "properties": [1], "contains": 5}], "removed": []}, cur_text, gold_text)
    assert (1, "properties") in odd.spurious and (1, "contains") in odd.missed | odd.wrong_value


def test_wrong_types_in_a_parsed_answer_score_zero_not_crash():
    cur = json.dumps(_state(_obj(1, x=1)))
    for answer in ['{"modified": 5, "removed": []}', '{"modified": [5, "x", {"uuid": [1]}], "removed": {"a": 1}}',
                   '{"modified": [{"uuid": 1, "properties": 3, "contains": 4}], "removed": [[1]], "score": 7}']:
        result = score_completion("The final answer is: " + answer, cur, cur)
        assert not result.correct


def test_prompt_from_real_row_has_rules_examples_state_and_action(records, rules):
    examples = load_examples(REAL_EXAMPLES)
    record = next(r for r in records if r["game"] == "boil-water")
    prompt = build_prompt(record, rules, examples)
    assert prompt.startswith("You are a simulator of a text game.")
    assert "You should assign the uuid of new objects starting from the UUID base" in prompt
    assert "It should have three keys: 'modified', 'removed', and 'score'." in prompt
    assert "some game states may change over the time" in prompt
    # Both in-context examples come from dishwasher, with dishwasher's rules.
    assert "In the first example, the game state is changed by an action:" in prompt
    assert "In the second example from the same example game" in prompt
    assert "Your task is to wash the dirty dishes." in prompt
    assert rules.score_rules["dishwasher"].strip() in prompt
    # Then the target game's own rules, state, UUID base and action.
    target = prompt.split("Here is the game that you need to simulate:\n")[1]
    assert rules.action_rules["boil-water"].strip() in target
    assert rules.score_rules["boil-water"].strip() in target
    assert rules.object_text("boil-water") in target
    assert str(current_game_state(record)) in target
    assert f"The current game UUID base is {record['current_state']['max_UUID']}\n" in target
    assert f"The action to take is:\n{record['tick_state']['lastAction']}\n" in target
    assert prompt.endswith("Please make sure to clearly indicate your answer by starting with 'The final answer is:'.\n")


def test_prompt_switches_shorten_it(records, rules):
    record = records[0]
    full = build_prompt(record, rules, load_examples(REAL_EXAMPLES))
    short = build_prompt(record, None, None, PromptOptions(include_rules=False, include_examples=False, state_format="json"))
    assert len(short) < len(full) / 3
    assert "Here are the descriptions" not in short and "first example" not in short
    assert json.dumps(current_game_state(record), separators=(", ", ": ")) in short


def test_malformed_jsonl_names_file_line_and_field(tmp_path, records):
    bad = copy.deepcopy(records[0])
    del bad["tick_state"]["objects"][2]["properties"]
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps(records[1]) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(TransitionFormatError, match=r"bad\.jsonl\.gz, line 3: missing field 'tick_state\.objects\[2\]\.properties'"):
        load_transitions(path)
    (tmp_path / "broken.jsonl").write_text('{"game": 1\n')
    with pytest.raises(TransitionFormatError, match=r"broken\.jsonl, line 1: invalid JSON"):
        load_transitions(tmp_path / "broken.jsonl")
