"""Evaluate a text-game world model (or a trivial baseline) on a dataset split.

Predictors:
- ``copy``: "nothing changes" (empty ``modified``/``removed``, score unchanged), the trivial baseline;
- ``oracle``: the gold diff (an upper bound that checks the pipeline end to end);
- ``model``: a causal LM (a full checkpoint or a LoRA adapter directory) decoding each prompt.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from rlvr_world.metrics.text import AccuracyCounter, diagnose_answer, score_completion
from rlvr_world.rewards import task_specific_value
from rlvr_world.text.textgame import empty_diff, extract_answer, format_answer, gold_diff

PREDICTORS = ("copy", "oracle", "model")


@dataclass
class GenerationOptions:
    """Decoding settings; the paper evaluates greedily."""

    batch_size: int = 8
    max_new_tokens: int = 1024
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None


def copy_predictions(dataset) -> list[str]:
    return [format_answer(empty_diff())] * len(dataset)


def oracle_predictions(dataset) -> list[str]:
    return [
        format_answer(gold_diff(json.loads(cur), json.loads(gold)))
        for cur, gold in zip(dataset["data_state"], dataset["ground_truth"])
    ]


def load_causal_lm(model_dir: str, device: str | None = None):
    """A causal LM and its tokenizer; a LoRA adapter directory is loaded on top of its base model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if (path / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # decoder-only batches generate from the right edge
    return model.to(device).eval(), tokenizer


def prompt_text(prompt, tokenizer) -> str:
    """Chat prompts go through the tokenizer's chat template; plain prompts are used as they are."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def generate_completions(model, tokenizer, prompts, options: GenerationOptions, progress: bool = True) -> list[str]:
    """Batched generation for chat or plain prompts, sorted by length to pad little; the tokenizer
    pads on the left for the call (decoder-only batches generate from the right edge)."""
    import torch

    texts = [prompt_text(p, tokenizer) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[str] = [""] * len(texts)
    sampling = {"do_sample": options.do_sample}
    if options.do_sample:
        sampling.update(temperature=options.temperature, top_k=options.top_k)
    device = next(model.parameters()).device
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        with torch.inference_mode(), tqdm(total=len(texts), desc="generating", unit="prompt",
                                          disable=not progress) as bar:
            for start in range(0, len(order), options.batch_size):
                batch = order[start : start + options.batch_size]
                enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
                enc = {k: v.to(device) for k, v in enc.items()}
                generated = model.generate(
                    **enc,
                    max_new_tokens=options.max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    **sampling,
                )
                new_tokens = generated[:, enc["input_ids"].shape[1] :]
                for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                    outputs[i] = text
                bar.update(len(batch))
    finally:
        tokenizer.padding_side = side
    return outputs


def score_predictions(dataset, predictions: Sequence[str]) -> tuple[dict, list[dict]]:
    """Overall metrics (with a per-game breakdown) and one scored row per transition."""
    overall, per_game = AccuracyCounter(), defaultdict(AccuracyCounter)
    rows = []
    games = dataset["game"] if "game" in dataset.column_names else ["?"] * len(dataset)
    for text, cur, gold, game in zip(predictions, dataset["data_state"], dataset["ground_truth"], games):
        result = score_completion(text, cur, gold)
        overall.add(result)
        per_game[game].add(result)
        rows.append({
            "game": game,
            "changed": result.changed,
            "correct": result.correct,
            "format_error": result.format_error,
            "item_score": None if result.score is None else result.score.item_score,
            "prediction": text,
        })
    metrics = overall.summary()
    metrics["per_game"] = {game: counter.summary() for game, counter in sorted(per_game.items())}
    return metrics, rows


def sampling_headroom(dataset, greedy: Sequence[str], samples: Sequence[Sequence[str]]) -> dict:
    """What sampling finds beyond greedy decoding, per transition kind: the room GRPO has to learn in.

    GRPO can only raise greedy accuracy where some sampled answer beats the greedy one. For each
    transition: pass@k (some sample exactly right), the mean sample accuracy, and whether the best
    sample's task-specific reward (the reference's weights, GRPO's default) beats the greedy answer's.
    Percentages; ``None`` for an empty kind.
    """
    if not (len(greedy) == len(samples) == len(dataset)):
        raise ValueError(f"{len(dataset)} transitions but {len(greedy)} greedy answers and {len(samples)} sample sets")
    kinds: dict[str, dict[str, list[float]]] = {
        kind: {"pass": [], "sample_acc": [], "greedy_acc": [], "beats": [], "greedy_reward": [], "best_reward": []}
        for kind in ("overall", "unchanged", "changed")
    }
    for greedy_text, texts, cur, gold in zip(greedy, samples, dataset["data_state"], dataset["ground_truth"]):
        if not texts:
            raise ValueError("every transition needs at least one sample")
        base = score_completion(greedy_text, cur, gold)
        drawn = [score_completion(text, cur, gold) for text in texts]
        base_reward = task_specific_value(base)
        best_reward = max(task_specific_value(r) for r in drawn)
        for kind in ("overall", "changed" if base.changed else "unchanged"):
            k = kinds[kind]
            k["pass"].append(any(r.correct for r in drawn))
            k["sample_acc"].append(sum(r.correct for r in drawn) / len(drawn))
            k["greedy_acc"].append(base.correct)
            k["beats"].append(best_reward > base_reward + 1e-9)
            k["greedy_reward"].append(base_reward)
            k["best_reward"].append(best_reward)

    def mean(values, scale=100.0, digits=2):
        return round(scale * sum(values) / len(values), digits) if values else None

    out = {"num_samples": len(samples[0]) if samples else 0}
    for kind, k in kinds.items():
        out[kind] = {
            "transitions": len(k["pass"]),
            "greedy_accuracy": mean(k["greedy_acc"]),
            "sample_accuracy": mean(k["sample_acc"]),
            "pass_at_k": mean(k["pass"]),
            "best_beats_greedy": mean(k["beats"]),
            "greedy_reward": mean(k["greedy_reward"], 1.0, 4),
            "best_of_k_reward": mean(k["best_reward"], 1.0, 4),
        }
    return out


def empty_diff_logprobs(model, tokenizer, prompts, progress: bool = True) -> list[float]:
    """log p(the empty diff's tail | prompt, the answer opened up to ``"modified":``), one forward pass per prompt.

    Answers part ways at the first token of the ``modified`` list ("nothing changes" or an object), so this
    reads off how sure the model is that nothing changes, without sampling.
    """
    import torch

    answer = format_answer(empty_diff())
    head = answer[: answer.index('"modified":') + len('"modified":')]
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for prompt in tqdm(prompts, desc="p(no change)", unit="prompt", disable=not progress):
            text = prompt_text(prompt, tokenizer)
            enc = tokenizer(text + answer, add_special_tokens=False, return_offsets_mapping=True)
            ids = torch.tensor([enc["input_ids"]], device=device)
            # Tokens that reach into the tail (one may straddle the boundary and still carry the decision).
            tail = [i for i, (_, end) in enumerate(enc["offset_mapping"]) if end > len(text) + len(head)]
            if not tail or tail[0] == 0:
                raise ValueError("the empty diff's tail starts the text: nothing to condition on")
            # Only the positions that predict the tail: the 49k-way head over the whole prompt is wasted work.
            logits = model(ids, logits_to_keep=ids.shape[1] - tail[0] + 1).logits[0, :-1].float()
            targets = ids[0, tail[0]:]
            out.append(torch.log_softmax(logits, -1).gather(-1, targets[:, None]).sum().item())
    return out


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """The chance that a positive scores above a negative (ties count half): 0.5 is blind, 1.0 separates."""
    return sum((p > q) + 0.5 * (p == q) for p in positive for q in negative) / (len(positive) * len(negative))


def no_change_separation(dataset, logprobs: Sequence[float], greedy_rows: Sequence[dict]) -> dict:
    """Does the model know when nothing changes? From :func:`empty_diff_logprobs`:

    - ``auroc``: the chance that an unchanged transition gets a higher p(empty diff) than a changed one
      (0.5: the model cannot tell them apart, and any push toward "nothing changes" moves every transition);
    - the mean p(empty diff) on each kind;
    - ``threshold_accuracy``: the best overall accuracy of answering the empty diff where p(empty diff)
      clears a threshold and the greedy answer elsewhere, the threshold tuned on these rows (an upper
      bound on what moving the no-change decision alone can reach); percentages.
    """
    if not (len(logprobs) == len(greedy_rows) == len(dataset)):
        raise ValueError(f"{len(dataset)} transitions but {len(logprobs)} scores and {len(greedy_rows)} greedy rows")
    _, copy_rows = score_predictions(dataset, copy_predictions(dataset))
    unchanged = [lp for lp, row in zip(logprobs, copy_rows) if not row["changed"]]
    changed = [lp for lp, row in zip(logprobs, copy_rows) if row["changed"]]
    separation = auroc(unchanged, changed) if unchanged and changed else None
    best = max(
        sum(copy["correct"] if lp >= t else greedy["correct"] for lp, copy, greedy in zip(logprobs, copy_rows, greedy_rows))
        for t in [*logprobs, math.inf]
    )

    def mean_p(values):
        return float(f"{sum(math.exp(v) for v in values) / len(values):.4g}") if values else None

    return {
        "auroc": None if separation is None else round(separation, 3),
        "p_empty_unchanged": mean_p(unchanged),
        "p_empty_changed": mean_p(changed),
        "greedy_accuracy": round(100 * sum(r["correct"] for r in greedy_rows) / len(greedy_rows), 2) if greedy_rows else None,
        "threshold_accuracy": round(100 * best / len(logprobs), 2) if logprobs else None,
    }


def separation_table(separations: dict[str, dict]) -> list[str]:
    lines = ["| model | AUROC unchanged vs changed | p(empty diff): unchanged | changed | greedy accuracy | "
             "best threshold on p(empty diff) |", "|---|---|---|---|---|---|"]
    for label, s in separations.items():
        lines.append(f"| {label} | {_fmt(s['auroc'])} | {_fmt(s['p_empty_unchanged'])} | {_fmt(s['p_empty_changed'])} | "
                     f"{_fmt(s['greedy_accuracy'])} | {_fmt(s['threshold_accuracy'])} |")
    return lines


def headroom_table(headrooms: dict[str, dict], kinds: Sequence[str] = ("overall", "unchanged", "changed")) -> list[str]:
    """A markdown table of :func:`sampling_headroom` results, one row per model (the key) and transition kind."""
    k = next(iter(headrooms.values()))["num_samples"]
    header = (f"| model | transitions | greedy | mean sample | pass@{k} | best sample beats greedy | reward: greedy | "
              f"reward: best of {k} |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for label, headroom in headrooms.items():
        for kind in kinds:
            m = headroom[kind]
            lines.append(f"| {label} | {kind} ({m['transitions']}) | {_fmt(m['greedy_accuracy'])} | "
                         f"{_fmt(m['sample_accuracy'])} | {_fmt(m['pass_at_k'])} | {_fmt(m['best_beats_greedy'])} | "
                         f"{_fmt(m['greedy_reward'])} | {_fmt(m['best_of_k_reward'])} |")
    note = ("Accuracies and \"best sample beats greedy\" in percent; rewards are the task-specific reward with the "
            "reference weights. GRPO can only raise greedy accuracy where a sample beats the greedy answer; where "
            "pass@k equals greedy accuracy, training mostly sharpens the sampling distribution toward what greedy "
            "decoding already says.")
    return lines + ["", note]


ERROR_KINDS = {
    "no_change": "predicts no change",
    "missed_change": "misses a change",
    "wrong_value": "right property, wrong value",
    "spurious_change": "changes what stays",
    "wrong_score": "wrong score",
    "wrong_objects": "wrong new or missing objects",
    "invented_names": "names objects that do not exist",
}


def error_breakdown(dataset, predictions: Sequence[str], top: int = 8) -> dict:
    """Why answers are wrong, per transition kind: how many wrong answers show each error kind.

    A wrong answer can show several kinds (:class:`~rlvr_world.metrics.text.AnswerErrors`), so the
    kinds do not add up to the wrong count. ``top_errors`` lists the most frequent ``(error, key)``
    pairs, e.g. ``"wrong value: contains"``.
    """
    if len(predictions) != len(dataset):
        raise ValueError(f"{len(dataset)} transitions but {len(predictions)} predictions")
    out = {}
    keys = {"unchanged": Counter(), "changed": Counter()}
    for text, cur, gold in zip(predictions, dataset["data_state"], dataset["ground_truth"]):
        result = score_completion(text, cur, gold)
        kind = "changed" if result.changed else "unchanged"
        counts = out.setdefault(kind, {"transitions": 0, "wrong": 0, "format_errors": 0, **dict.fromkeys(ERROR_KINDS, 0)})
        counts["transitions"] += 1
        if result.correct:
            continue
        counts["wrong"] += 1
        errors = diagnose_answer(extract_answer(text), cur, gold) if not result.format_error else None
        if errors is None:
            counts["format_errors"] += 1
            continue
        for name, present in errors.kinds.items():
            counts[name] += present
        for label, pairs in (("missed", errors.missed), ("wrong value", errors.wrong_value),
                             ("spurious", errors.spurious)):
            keys[kind].update(f"{label}: {key}" for _, key in pairs)
    for kind, counts in out.items():
        counts["top_errors"] = keys[kind].most_common(top)
    return out


def error_table(breakdowns: dict[str, dict], kinds: Sequence[str] = ("unchanged", "changed")) -> list[str]:
    """A markdown table of :func:`error_breakdown` results, one row per model (the key) and transition kind."""
    header = "| model | transitions | wrong | format errors | " + " | ".join(ERROR_KINDS.values()) + " |"
    lines = [header, "|" + "---|" * (4 + len(ERROR_KINDS))]
    for label, breakdown in breakdowns.items():
        for kind in kinds:
            if kind not in breakdown:
                continue
            m = breakdown[kind]
            cells = [m["wrong"], m["format_errors"], *(m[name] for name in ERROR_KINDS)]
            lines.append(f"| {label} | {kind} ({m['transitions']}) | " + " | ".join(map(str, cells)) + " |")
    note = ("Counts of wrong answers; one answer can show several error kinds. \"Names objects that do not exist\": "
            "a `contains` list holds a name found in neither the current nor the next state (a copying error).")
    return lines + ["", note]


def exact_mcnemar_p(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar test: how likely a split at least this uneven is if neither model is better."""
    n = fixed + broken
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(fixed, broken) + 1)) / 2**n
    return min(1.0, 2 * tail)


def transition_flips(base: Sequence[dict], other: Sequence[dict]) -> dict:
    """Per transition kind, how many transitions ``other`` gets right that ``base`` got wrong, and the reverse.

    Both are the scored rows of the same transitions (``predictions.jsonl``: ``changed`` and ``correct``).
    ``p_value`` is the exact McNemar test on those two counts (a paired test: same transitions).
    """
    if len(base) != len(other):
        raise ValueError(f"{len(base)} and {len(other)} scored rows: not the same transitions")
    out = {kind: {"fixed": 0, "broken": 0} for kind in ("unchanged", "changed")}
    for a, b in zip(base, other):
        if a["changed"] != b["changed"]:
            raise ValueError("scored rows are not the same transitions (the changed flags differ)")
        kind = out["changed" if a["changed"] else "unchanged"]
        kind["fixed"] += b["correct"] and not a["correct"]
        kind["broken"] += a["correct"] and not b["correct"]
    for kind in out.values():
        kind["p_value"] = exact_mcnemar_p(kind["fixed"], kind["broken"])
    return out


def _label(metrics: dict) -> str:
    """The row label in a report: the model directory's name, else the predictor (``copy``, ``oracle``)."""
    return Path(metrics["model"]).name if metrics.get("model") else metrics.get("predictor", "model")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def write_report(output_dir: Path, metrics: dict, title: str, details: dict) -> Path:
    """A markdown report a person wants to read: the headline table, then games, then settings."""
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: `{v}`" for k, v in details.items()]
    lines += [
        "",
        "| transitions | accuracy (all) | unchanged | changed | format errors |",
        "|---|---|---|---|---|",
        f"| {metrics['num_transitions']} | {_fmt(metrics['accuracy_overall'])} | "
        f"{_fmt(metrics['accuracy_unchanged'])} ({metrics['num_unchanged']}) | "
        f"{_fmt(metrics['accuracy_changed'])} ({metrics['num_changed']}) | {_fmt(metrics['format_error_rate'])} |",
        "",
        "Accuracies and the format-error rate are percentages; a transition is correct when every "
        "property of every gold object, every `contains` list and the score are predicted exactly.",
        "",
        "## Per game",
        "",
        "| game | transitions | all | unchanged | changed | format errors |",
        "|---|---|---|---|---|---|",
    ]
    for game, m in metrics["per_game"].items():
        lines.append(
            f"| {game} | {m['num_transitions']} | {_fmt(m['accuracy_overall'])} | {_fmt(m['accuracy_unchanged'])} | "
            f"{_fmt(m['accuracy_changed'])} | {_fmt(m['format_error_rate'])} |"
        )
    if "error_breakdown" in metrics:
        breakdown = metrics["error_breakdown"]
        lines += ["", "## Why answers are wrong", "", *error_table({_label(metrics): breakdown})]
        for kind in ("changed", "unchanged"):
            if breakdown.get(kind, {}).get("top_errors"):
                pairs = ", ".join(f"{label} ({n})" for label, n in breakdown[kind]["top_errors"])
                lines += ["", f"Most frequent property errors on {kind} transitions: {pairs}."]
    if "sampling_headroom" in metrics:
        headroom = metrics["sampling_headroom"]
        k, temperature = headroom["num_samples"], headroom["temperature"]
        title = f"## Sampling headroom ({k} samples per transition, temperature {temperature})"
        lines += ["", title, ""]
        lines += headroom_table({_label(metrics): headroom})
    if "no_change_separation" in metrics:
        lines += ["", "## Does the model know when nothing changes?", "", *separation_table({_label(metrics): metrics["no_change_separation"]})]
    path = output_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def evaluate(
    dataset,
    predictor: str,
    output_dir: str | Path,
    model_dir: str | None = None,
    generation: GenerationOptions | None = None,
    dataset_name: str = "",
    headroom_samples: int = 0,
    headroom_temperature: float = 1.0,
    headroom_seed: int = 0,
    no_change_scores: bool = False,
) -> dict:
    """Predict, score, and write ``metrics.json``, ``report.md`` and ``predictions.jsonl``.

    ``metrics["error_breakdown"]`` says why the wrong answers are wrong (:func:`error_breakdown`).

    With ``headroom_samples > 0`` (model predictor only) it also draws that many samples per
    transition and adds :func:`sampling_headroom` under ``metrics["sampling_headroom"]``. With
    ``no_change_scores`` (model predictor only) it adds :func:`no_change_separation` under
    ``metrics["no_change_separation"]``.
    """
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
    if (headroom_samples or no_change_scores) and predictor != "model":
        raise ValueError("sampling headroom and no-change scores need the model predictor")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    generation = generation or GenerationOptions()
    if predictor == "copy":
        predictions = copy_predictions(dataset)
    elif predictor == "oracle":
        predictions = oracle_predictions(dataset)
    else:
        if not model_dir:
            raise ValueError("--predictor model needs --model DIR")
        model, tokenizer = load_causal_lm(model_dir)
        predictions = generate_completions(model, tokenizer, dataset["prompt"], generation)
    metrics, rows = score_predictions(dataset, predictions)
    metrics["error_breakdown"] = error_breakdown(dataset, predictions)
    if headroom_samples:
        import torch

        torch.manual_seed(headroom_seed)  # the same samples on a re-run
        sampling = GenerationOptions(generation.batch_size, generation.max_new_tokens, True, headroom_temperature)
        repeated = [p for p in dataset["prompt"] for _ in range(headroom_samples)]
        drawn = generate_completions(model, tokenizer, repeated, sampling)
        samples = [drawn[i * headroom_samples : (i + 1) * headroom_samples] for i in range(len(dataset))]
        metrics["sampling_headroom"] = {**sampling_headroom(dataset, predictions, samples),
                                        "temperature": headroom_temperature}
    if no_change_scores:
        logprobs = empty_diff_logprobs(model, tokenizer, dataset["prompt"])
        metrics["no_change_separation"] = no_change_separation(dataset, logprobs, rows)
        for row, lp in zip(rows, logprobs):
            row["logp_empty_diff"] = round(lp, 4)
    metrics["predictor"] = predictor
    metrics["model"] = model_dir
    with open(output_dir / "metrics.json", "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)
    with open(output_dir / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    details = {"dataset": dataset_name, "predictor": predictor}
    if model_dir:
        details["model"] = model_dir
        details["decoding"] = "greedy" if not generation.do_sample else f"sampled, T={generation.temperature}"
    write_report(output_dir, metrics, "Text-game world model evaluation", details)
    return metrics
