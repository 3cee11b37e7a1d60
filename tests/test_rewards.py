import json

import pytest

from rlvr_world.rewards import REWARD_FUNCS, get_reward_funcs
from rlvr_world.text.textgame import format_answer, gold_diff


def _obj(uuid, contains=(), **props):
    return {"name": f"o (ID: {uuid})", "uuid": uuid, "type": "T", "properties": props, "contains": list(contains)}


SCORE = {"score": 0, "gameOver": False, "gameWon": False}
CUR = {"game_state": [_obj(1, x=1, y=1), _obj(2, z=0), _obj(3, w=5), SCORE]}
NXT = {"game_state": [_obj(1, x=2, y=3), _obj(2, z=0), _obj(3, w=5), {**SCORE, "score": 1}]}
COLS = {"data_state": [json.dumps(CUR)], "ground_truth": [json.dumps(NXT)]}


def _reward(name, text, **options):
    return get_reward_funcs([name], {name: options})[0](completions=[text], **COLS)[0]


def test_registry_names_and_trl_names():
    assert {"textgame_binary", "textgame_task_specific"} <= REWARD_FUNCS.keys()
    funcs = get_reward_funcs(["textgame_binary", "textgame_task_specific"])
    assert [f.__name__ for f in funcs] == ["textgame_binary", "textgame_task_specific"]
    with pytest.raises(KeyError, match="unknown reward"):
        get_reward_funcs(["nope"])


def test_gold_answer_gets_full_rewards():
    gold = format_answer(gold_diff(CUR, NXT))
    assert _reward("textgame_binary", gold) == 1.0
    assert _reward("textgame_task_specific", gold) == pytest.approx(1.3)
    # Chat-style completions work too.
    f = get_reward_funcs(["textgame_binary"])[0]
    assert f(completions=[[{"role": "assistant", "content": gold}]], **COLS) == [1.0]


def test_task_specific_terms():
    # Empty diff: 5 of 7 items right (x, y wrong; each object also scores its contains), score 2 of 3, none of the 2 changed pairs.
    empty = 'The final answer is: {"modified": [], "removed": [], "score": {}}'
    assert _reward("textgame_binary", empty) == 0.0
    assert _reward("textgame_task_specific", empty) == pytest.approx(0.09 * 5 / 7 + 0.01 * 2 / 3)
    # Half the changed pairs right (x), and the score right.
    half = format_answer({"modified": [_obj(1, x=2, y=1)], "removed": [], "score": NXT["game_state"][-1]})
    assert _reward("textgame_task_specific", half) == pytest.approx(0.09 * 6 / 7 + 0.01 + 0.5)
    # Weights come from options (a recipe).
    assert _reward("textgame_task_specific", half, item_weight=0, score_weight=0, correct_weight=0,
                   changed_weight=2.0) == pytest.approx(1.0)


def test_unchanged_transition_drops_the_changed_term():
    cols = {"data_state": [json.dumps(CUR)], "ground_truth": [json.dumps(CUR)]}
    f = get_reward_funcs(["textgame_task_specific"])[0]
    empty = 'The final answer is: {"modified": [], "removed": [], "score": {}}'
    assert f(completions=[empty], **cols) == [pytest.approx(0.3)]


def test_malformed_output_scores_zero():
    for text in ["", "garbage", '{"modified": []}', "The final answer is: {", None]:
        assert _reward("textgame_binary", text) == 0.0
        assert _reward("textgame_task_specific", text) == 0.0
