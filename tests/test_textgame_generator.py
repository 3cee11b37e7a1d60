"""The procedural text-game generator: determinism, the GPT-simulator schema, consistency, splits."""

import itertools
import json
from collections import defaultdict
from pathlib import Path

import pytest

from rlvr_world.data.textgame_generator import (
    DEFAULT_HELDOUT_GAMES,
    EPISODE_STRIDE,
    GAMES,
    generate_transitions,
    make_splits,
    rules,
)

STATE_KEYS = {"observation", "look", "inventory", "taskDesc", "lastAction", "objects", "max_UUID"}
SCORE_KEYS = {"score", "gameOver", "gameWon"}
RECORD_KEYS = {
    "current_state",
    "action_state",
    "tick_state",
    "current_score_state",
    "next_score_state",
    "game",
    "state_id",
}
REAL_RULES = Path(__file__).resolve().parents[2] / "shared" / "data" / "bytesized32" / "rules" / "object_rules.json"


@pytest.fixture(scope="module")
def records():
    return generate_transitions(episodes_per_game=12, seed=0)


@pytest.fixture(scope="module")
def splits():
    return make_splits(seed=0)


def episodes_of(records):
    """Records grouped by (game, episode), in step order."""
    grouped = defaultdict(list)
    for record in records:
        grouped[record["game"], record["state_id"] // EPISODE_STRIDE].append(record)
    return grouped


def changed(record):
    return record["current_state"]["objects"] != record["tick_state"]["objects"]


# ----------------------------------------------------------------------------- registry and rules


def test_registry_has_at_least_eight_games_all_generating():
    assert len(GAMES) >= 8
    for name, game in GAMES.items():
        assert game.name == name
        assert generate_transitions([name], episodes_per_game=1, seed=3)


def test_every_game_has_short_rules_in_the_reference_layout():
    game_rules = rules()
    assert set(game_rules) == {"object_rules", "action_rules", "score_rules"}
    for name in GAMES:
        objects = game_rules["object_rules"][name]
        # The prompt builder drops the text after the last separator, so the rules end with one.
        assert objects.rstrip().endswith("==========")
        assert objects.count("==========") >= 2
        assert "Object: " in objects
        assert game_rules["action_rules"][name].strip() and game_rules["score_rules"][name].strip()
        assert sum(len(game_rules[kind][name]) for kind in game_rules) < 2500


def test_game_names_do_not_collide_with_the_real_games():
    if not REAL_RULES.exists():
        pytest.skip("real ByteSized32 rules not available")
    real = set(json.loads(REAL_RULES.read_text()))
    assert not real & set(GAMES)  # merged rule tables must not overwrite each other


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_json_and_different_seed_different():
    games = ["heat-soup", "make-salad", "feed-fish"]
    first = json.dumps(generate_transitions(games, episodes_per_game=4, seed=7))
    assert first == json.dumps(generate_transitions(games, episodes_per_game=4, seed=7))
    assert first != json.dumps(generate_transitions(games, episodes_per_game=4, seed=8))


def test_episodes_do_not_depend_on_which_other_games_are_generated():
    alone = generate_transitions(["weigh-fruit"], episodes_per_game=3, seed=1)
    together = [r for r in generate_transitions(episodes_per_game=3, seed=1) if r["game"] == "weigh-fruit"]
    assert json.dumps(alone) == json.dumps(together)


def test_initial_states_vary_with_the_seed():
    for name in GAMES:
        starts = {
            json.dumps(r["current_state"]["objects"])
            for r in generate_transitions([name], episodes_per_game=10, seed=0)
            if r["state_id"] % EPISODE_STRIDE == 0
        }
        assert len(starts) >= 3, name


# ----------------------------------------------------------------------------- schema


def check_state(state):
    assert set(state) == STATE_KEYS
    for key in ("observation", "look", "inventory", "taskDesc", "lastAction"):
        assert isinstance(state[key], str)
    assert isinstance(state["max_UUID"], int) and not isinstance(state["max_UUID"], bool)
    assert isinstance(state["objects"], list) and 3 <= len(state["objects"]) <= 10
    for obj in state["objects"]:
        assert set(obj) == {"name", "uuid", "type", "properties", "contains"}
        assert isinstance(obj["uuid"], int) and not isinstance(obj["uuid"], bool)
        assert obj["name"].endswith(f" (ID: {obj['uuid']})")
        assert isinstance(obj["type"], str) and obj["type"]
        assert isinstance(obj["properties"], dict)
        assert isinstance(obj["properties"]["isContainer"], bool)
        assert isinstance(obj["properties"]["isMoveable"], bool)
        for value in obj["properties"].values():
            assert isinstance(value, (bool, int, float, str, list, dict))
        assert isinstance(obj["contains"], list) and all(isinstance(n, str) for n in obj["contains"])


def check_score(score):
    assert set(score) == SCORE_KEYS
    assert isinstance(score["score"], int) and not isinstance(score["score"], bool)
    assert isinstance(score["gameOver"], bool) and isinstance(score["gameWon"], bool)
    assert not score["gameWon"] or score["gameOver"]


def test_every_record_matches_the_gpt_simulator_schema(records):
    for record in records:
        assert set(record) == RECORD_KEYS
        assert record["game"] in GAMES
        assert isinstance(record["state_id"], int)
        for key in ("current_state", "action_state", "tick_state"):
            check_state(record[key])
        check_score(record["current_score_state"])
        check_score(record["next_score_state"])
        # The prompt reads the action from tick_state; action_state is right after the same action.
        assert record["tick_state"]["lastAction"] == record["action_state"]["lastAction"] != ""
        assert record["current_state"]["taskDesc"] == record["tick_state"]["taskDesc"]


def test_state_ids_are_unique_per_game(records):
    seen = defaultdict(set)
    for record in records:
        assert record["state_id"] not in seen[record["game"]]
        seen[record["game"]].add(record["state_id"])


# ----------------------------------------------------------------------------- consistency


def check_tree(state):
    objects = state["objects"]
    names = [obj["name"] for obj in objects]
    uuids = [obj["uuid"] for obj in objects]
    assert len(set(uuids)) == len(uuids) and len(set(names)) == len(names)
    world, agent = objects[0], next(obj for obj in objects if obj["uuid"] == 0)
    assert world["type"] == "World" and world["uuid"] == 1 and agent["type"] == "Agent"
    assert agent["name"] in world["contains"]
    # Every object but the world sits in exactly one container, named exactly as the object is.
    parents = defaultdict(int)
    for obj in objects:
        for child in obj["contains"]:
            assert child in names, child
            parents[child] += 1
            assert obj["properties"]["isContainer"]
    assert all(parents[name] == 1 for name in names[1:]) and parents[world["name"]] == 0
    assert state["max_UUID"] > max(uuids)


def test_states_are_internally_consistent(records):
    for record in records:
        for key in ("current_state", "action_state", "tick_state"):
            check_tree(record[key])


def test_new_objects_take_the_uuid_base_and_bump_max_uuid(records):
    for record in records:
        before, after = record["current_state"], record["tick_state"]
        new = sorted({o["uuid"] for o in after["objects"]} - {o["uuid"] for o in before["objects"]})
        assert new == list(range(before["max_UUID"], before["max_UUID"] + len(new)))
        assert after["max_UUID"] == before["max_UUID"] + len(new)


def test_episodes_chain_states_and_scores(records):
    for episode in episodes_of(records).values():
        assert [r["state_id"] % EPISODE_STRIDE for r in episode] == list(range(len(episode)))
        for previous, record in itertools.pairwise(episode):
            assert record["current_state"] == previous["tick_state"]
            assert record["current_score_state"] == previous["next_score_state"]
            assert record["current_state"]["lastAction"] == previous["tick_state"]["lastAction"]
        assert episode[0]["current_state"]["lastAction"] == ""
        # The game stops at game over, and only there.
        assert not any(r["next_score_state"]["gameOver"] for r in episode[:-1])
        assert not episode[0]["current_score_state"]["gameOver"]


def test_information_actions_change_nothing(records):
    for record in records:
        if record["tick_state"]["lastAction"].startswith(("look around", "inventory", "examine")):
            assert record["action_state"]["objects"] == record["current_state"]["objects"]


def test_failed_actions_change_nothing(records):
    refusals = (
        "You can't",
        "You don't",
        "The ",
        "There is nothing",
        "There is not",
        "You already",
        "Both ends",
        "A wire",
        "Close the",
        "You need",
    )
    failed = [r for r in records if r["action_state"]["observation"].startswith(refusals)]
    assert len(failed) > 50
    for record in failed:
        assert record["action_state"]["objects"] == record["current_state"]["objects"]


# ----------------------------------------------------------------------------- the mix of transitions


def test_changed_fraction_is_in_a_sane_range(records):
    fraction = sum(map(changed, records)) / len(records)
    assert 0.4 <= fraction <= 0.7
    for name in GAMES:
        per_game = [r for r in records if r["game"] == name]
        assert 0.25 <= sum(map(changed, per_game)) / len(per_game) <= 0.95, name


def test_tick_only_changes_exist(records):
    tick_only = [r for r in records if r["action_state"]["objects"] == r["current_state"]["objects"] and changed(r)]
    assert len(tick_only) / len(records) > 0.05
    assert len({r["game"] for r in tick_only}) >= 4


def test_objects_are_created_and_removed(records):
    def uuids(state):
        return {o["uuid"] for o in state["objects"]}

    created = {r["game"] for r in records if uuids(r["tick_state"]) - uuids(r["current_state"])}
    removed = {r["game"] for r in records if uuids(r["current_state"]) - uuids(r["tick_state"])}
    assert {"make-salad", "grow-bean"} <= created
    assert {"make-salad", "run-dishwasher", "feed-fish"} <= removed


def test_games_are_won_lost_and_scored(records):
    endings = [r["next_score_state"] for r in records if r["next_score_state"]["gameOver"]]
    assert any(s["gameWon"] for s in endings) and any(not s["gameWon"] for s in endings)
    for name in GAMES:
        assert any(r["next_score_state"]["gameWon"] for r in records if r["game"] == name), name
    assert any(r["next_score_state"]["score"] != r["current_score_state"]["score"] for r in records)


def test_states_stay_small(records):
    for record in records:
        for key in ("current_state", "tick_state"):
            assert len(json.dumps(record[key]["objects"])) < 2500
            assert len(json.dumps(record[key])) < 3500


# ----------------------------------------------------------------------------- splits


def test_default_split_sizes(splits):
    assert set(splits) == {"train", "heldout_transitions", "heldout_games"}
    assert 2000 <= len(splits["train"]) <= 4000
    assert 200 <= len(splits["heldout_transitions"]) <= 1000
    assert 200 <= len(splits["heldout_games"]) <= 1200


def test_splits_are_disjoint(splits):
    heldout = set(DEFAULT_HELDOUT_GAMES)
    assert {r["game"] for r in splits["heldout_games"]} == heldout
    assert not {r["game"] for r in splits["train"]} & heldout
    assert not {r["game"] for r in splits["heldout_transitions"]} & heldout
    assert {r["game"] for r in splits["heldout_transitions"]} == {r["game"] for r in splits["train"]}

    def episodes(split):
        return {(r["game"], r["state_id"] // EPISODE_STRIDE) for r in splits[split]}

    assert not episodes("train") & episodes("heldout_transitions")  # whole episodes: no leakage


def test_splits_follow_the_arguments():
    small = make_splits(seed=2, heldout_games=("heat-soup", "grow-bean"), episodes_per_game=4, heldout_fraction=0.25)
    assert {r["game"] for r in small["heldout_games"]} == {"heat-soup", "grow-bean"}
    heldout_fish = {r["state_id"] // EPISODE_STRIDE for r in small["heldout_transitions"] if r["game"] == "feed-fish"}
    assert len(heldout_fish) == 1  # round(0.25 * 4) episodes
    with pytest.raises(KeyError):
        make_splits(heldout_games=("no-such-game",))


# ----------------------------------------------------------------------------- round trip with the metric


def test_gold_diff_round_trips_through_the_metric(records):
    textgame = pytest.importorskip("rlvr_world.text.textgame")
    for record in records:
        current, nxt = textgame.current_game_state(record), textgame.next_game_state(record)
        predicted = textgame.apply_diff(current, textgame.gold_diff(current, nxt))
        score = textgame.score_state(predicted, nxt, textgame.changed_properties(current, nxt))
        assert score.is_correct, (record["game"], record["state_id"])
        assert score.acc_changed in (None, 1.0)
