"""Reward throughput on the real ByteSized32 test states (one core, pure Python).

    python bench/bench_rewards.py [--generations 5]

Scores, per test transition, `generations` completions (the gold answer, "nothing changes", a
one-property mistake, a truncated answer, prose) the way GRPO does: the state columns repeat once per
completion, so parsing is cached per prompt. Prints rewards per second for each reward, cold and warm.
"""

import argparse
import json
import time

from rlvr_world.data.textgame import DEFAULT_BYTESIZED32_DIR
from rlvr_world.metrics import text as text_metrics
from rlvr_world.rewards import get_reward_funcs
from rlvr_world.text.textgame import (current_game_state, empty_diff, format_answer, gold_diff, load_transitions,
                                      next_game_state)


def completions_for(cur: dict, nxt: dict) -> list[str]:
    gold = gold_diff(cur, nxt)
    wrong = json.loads(json.dumps(gold))
    for obj in wrong["modified"][:1]:
        for key in list(obj["properties"])[:1]:
            obj["properties"][key] = "wrong"
    gold_text = format_answer(gold)
    return [gold_text, format_answer(empty_diff()), format_answer(wrong), gold_text[: len(gold_text) // 2],
            "I think the lamp turns on. " + gold_text]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--generations", type=int, default=5)
    args = parser.parse_args()
    records = load_transitions(DEFAULT_BYTESIZED32_DIR / "test.jsonl.gz")
    completions, states, golds = [], [], []
    for r in records:
        cur, nxt = current_game_state(r), next_game_state(r)
        cur_text, nxt_text = json.dumps(cur), json.dumps(nxt)
        for text in completions_for(cur, nxt)[: args.generations]:
            completions.append(text)
            states.append(cur_text)
            golds.append(nxt_text)
    print(f"{len(records)} transitions x {args.generations} completions = {len(completions)} rewards per pass")
    for reward in get_reward_funcs(["textgame_binary", "textgame_task_specific"]):
        for label in ("cold cache", "warm cache"):
            if label == "cold cache":
                text_metrics.parse_state.cache_clear()
                text_metrics.gold_changes.cache_clear()
            start = time.perf_counter()
            values = reward(completions=completions, data_state=states, ground_truth=golds)
            elapsed = time.perf_counter() - start
            print(f"{reward.__name__:24s} {label}: {len(values) / elapsed:9.0f} rewards/s "
                  f"(mean reward {sum(values) / len(values):.3f}, {elapsed:.2f} s)")


if __name__ == "__main__":
    main()
