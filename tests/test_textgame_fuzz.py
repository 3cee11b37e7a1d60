"""Whatever a model writes, extraction and rewards never raise."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlvr_world.rewards import get_reward_funcs
from rlvr_world.text.textgame import extract_answer

STATE = json.dumps({"game_state": [
    {"name": "box (ID: 1)", "uuid": 1, "type": "Box", "properties": {"isOpen": False}, "contains": []},
    {"score": 0, "gameOver": False, "gameWon": False}]})
REWARDS = get_reward_funcs(["textgame_binary", "textgame_task_specific"])
GOOD = json.dumps({"modified": [{"name": "box (ID: 1)", "uuid": 1, "type": "Box", "properties": {"isOpen": True},
                                 "contains": []}], "removed": [], "score": {}})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _check(text):
    extract_answer(text)
    for reward in REWARDS:
        values = reward(completions=[text], data_state=[STATE], ground_truth=[STATE])
        assert len(values) == 1 and 0.0 <= values[0] <= 1.3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes(raw):
    _check(raw.decode("utf-8", errors="replace"))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(GOOD)), st.sampled_from(["", "The final answer is: ", "```json\n"]))
def test_truncated_json(cut, prefix):
    _check(prefix + GOOD[:cut])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["modified", "removed", "score", "x"]), json_values, max_size=4))
def test_wrong_types(answer):
    _check("The final answer is: " + json.dumps(answer))


def test_huge_outputs():
    _check("The final answer is: " + "[" * 100_000)
    _check("{" * 50_000 + "}" * 10)
    _check("x" * 2_000_000)
    _check('The final answer is: {"modified": [' + ",".join([GOOD] * 2000) + '], "removed": []}')
