"""Does a text-game model know when nothing changes? p(empty diff) per held-out transition, no decoding.

    python bench/bench_no_change_separation.py --model runs/demo_smollm2/textgame/sft \
        --data runs/demo_smollm2/data/textgame_generated --limit 200 [--bf16]

Scores the demo's draw (`shuffle(seed=0)`, first `--limit` rows) with one forward pass each
(`rlvr_world.evaluation.textgame.empty_diff_logprobs`) and prints the AUROC of p(empty diff) for
unchanged against changed transitions and its mean on each kind. For comparison it prints the AUROC of
the simplest cue in the prompt: the share of training transitions with the same first word of the action
that change nothing. The greedy-answer figures (threshold bound) need decoding: `src/evaluate.py
--no_change_scores`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from collections import Counter


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model or LoRA adapter directory")
    parser.add_argument("--data", required=True, help="make_dataset.py textgame output (train + heldout_transitions)")
    parser.add_argument("--split", default="heldout_transitions")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CPUs with AVX512-BF16 or AMX)")
    args = parser.parse_args(argv)

    import torch

    from rlvr_world.data import load_dataset_dir
    from rlvr_world.evaluation.textgame import auroc, empty_diff_logprobs, load_causal_lm

    rows = load_dataset_dir(args.data, args.split).shuffle(seed=args.seed)
    rows = rows.select(range(min(args.limit, len(rows))))
    unchanged = [str(c) != "True" for c in rows["changed"]]  # stored as bool or as its string
    model, tokenizer = load_causal_lm(args.model)
    start = time.perf_counter()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    with autocast:
        scores = empty_diff_logprobs(model, tokenizer, rows["prompt"])
    seconds = time.perf_counter() - start
    same = [s for s, u in zip(scores, unchanged) if u]
    other = [s for s, u in zip(scores, unchanged) if not u]

    train = load_dataset_dir(args.data, "train")
    verb = lambda action: action.split()[0] if action.split() else ""  # noqa: E731
    total, still = Counter(), Counter()
    for action, changed in zip(train["data_action"], train["changed"]):
        total[verb(action)] += 1
        still[verb(action)] += str(changed) != "True"
    prior = [still[verb(a)] / total[verb(a)] if total[verb(a)] else 0.5 for a in rows["data_action"]]
    print(json.dumps({
        "model": args.model, "rows": len(rows), "unchanged": len(same), "changed": len(other),
        "auroc": round(auroc(same, other), 3),
        "p_empty_unchanged": round(sum(math.exp(s) for s in same) / len(same), 4),
        "p_empty_changed": round(sum(math.exp(s) for s in other) / len(other), 4),
        "action_verb_auroc": round(auroc([p for p, u in zip(prior, unchanged) if u],
                                         [p for p, u in zip(prior, unchanged) if not u]), 3),
        "seconds": round(seconds, 1),
    }))


if __name__ == "__main__":
    main()
