import json
import math
import subprocess
import sys

import datasets
import pytest

from helpers import REAL_TEST, REPO
from rlvr_world.data import load_dataset_dir
from rlvr_world.data.textgame import from_hub_columns
from rlvr_world.data.textgame import main as make_textgame
from rlvr_world.evaluation.textgame import evaluate
from rlvr_world.rewards import get_reward_funcs
from rlvr_world.text.textgame import extract_answer, load_transitions


@pytest.fixture(scope="module")
def small_jsonl(tmp_path_factory):
    """Forty real transitions from five games, including object-creating ones."""
    records = load_transitions(REAL_TEST)
    picked = [r for r in records if r["game"] in {"dishwasher", "boil-water", "make-campfire", "cooking", "mix-paint"}]
    path = tmp_path_factory.mktemp("raw") / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in picked[::len(picked) // 40][:40]))
    return path


@pytest.fixture(scope="module")
def canonical(small_jsonl, tmp_path_factory):
    out = tmp_path_factory.mktemp("canonical")
    make_textgame(["--source", "jsonl", "--input", str(small_jsonl), "--output_dir", str(out)])
    return out


@pytest.fixture(scope="module")
def hub_parquet(small_jsonl, tmp_path_factory):
    out = tmp_path_factory.mktemp("hub")
    make_textgame(["--source", "jsonl", "--input", str(small_jsonl), "--output_dir", str(out), "--hub_format"])
    return out


def test_canonical_dataset_columns_and_card(canonical):
    ds = load_dataset_dir(canonical, "test")
    assert len(ds) == 40
    assert set(ds.column_names) == {"prompt", "completion", "data_state", "ground_truth", "data_action", "game",
                                    "state_id", "changed"}
    row = ds[0]
    assert row["prompt"][0]["role"] == "user" and row["completion"][0]["role"] == "assistant"
    assert extract_answer(row["completion"][0]["content"]) is not None
    card = (canonical / "README.md").read_text()
    assert card.startswith("---\n") and "| test | 40 |" in card and "make_dataset.py textgame" in card
    # The parquet copy loads the same rows.
    parquet = datasets.load_dataset("parquet", data_files=str(canonical / "data" / "test-00000-of-00001.parquet"))["train"]
    assert parquet["ground_truth"] == ds["ground_truth"]


def test_hub_format_matches_the_reference_layout_and_converts_back(hub_parquet, canonical):
    hub = datasets.load_dataset("parquet", data_files=str(hub_parquet / "data" / "test-00000-of-00001.parquet"))["train"]
    assert set(hub.column_names) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    row = hub[3]
    assert row["reward_model"]["style"] == "rule"
    assert json.loads(row["reward_model"]["ground_truth"])["game_state"][-1].keys() == {"score", "gameOver", "gameWon"}
    assert set(row["extra_info"]) == {"split", "index", "data_state", "data_action"}
    assert row["prompt"][0]["content"].endswith("by starting with 'The final answer is:'.\n")

    back = from_hub_columns(hub)
    ours = load_dataset_dir(canonical, "test")
    assert back["ground_truth"] == ours["ground_truth"] and back["data_state"] == ours["data_state"]
    assert back["changed"] == ours["changed"]
    # The same reward callables serve both layouts.
    reward = get_reward_funcs(["textgame_binary"])[0]
    gold = [c[0]["content"] for c in ours["completion"]]
    assert reward(completions=gold, **{k: back[k] for k in ("data_state", "ground_truth")}) == [1.0] * 40


def test_hub_rows_with_a_missing_field_name_it():
    broken = datasets.Dataset.from_list([{"prompt": "p", "reward_model": {"style": "rule"}, "extra_info": {"data_state": "{}", "data_action": "a"}}])
    with pytest.raises(ValueError, match=r"row 0: missing field 'reward_model.ground_truth'"):
        from_hub_columns(broken)


def test_evaluate_cli_copy_and_oracle(canonical, tmp_path):
    for predictor, expected in (("oracle", 100.0), ("copy", None)):
        out = tmp_path / predictor
        subprocess.run([sys.executable, str(REPO / "src" / "evaluate.py"), "--task", "textgame", "--dataset", str(canonical),
                        "--predictor", predictor, "--output_dir", str(out)], check=True, capture_output=True)
        metrics = json.loads((out / "metrics.json").read_text())
        assert {"accuracy_overall", "accuracy_unchanged", "accuracy_changed", "format_error_rate",
                "num_transitions", "num_changed", "num_unchanged"} <= metrics.keys()
        assert (out / "report.md").read_text().startswith("# Text-game world model evaluation")
        if expected is not None:
            assert metrics["accuracy_overall"] == expected
        else:
            assert metrics["accuracy_changed"] == 0.0
            assert metrics["num_correct"] <= metrics["num_unchanged"]
    # --shuffle_seed then --limit: the demo's draw (the first rows after a seeded shuffle).
    out = tmp_path / "drawn"
    subprocess.run([sys.executable, str(REPO / "src" / "evaluate.py"), "--task", "textgame", "--dataset", str(canonical),
                    "--predictor", "copy", "--shuffle_seed", "0", "--limit", "7", "--output_dir", str(out)],
                   check=True, capture_output=True)
    drawn = load_dataset_dir(canonical, "test").shuffle(seed=0).select(range(7))
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["game"] for r in rows] == drawn["game"] and [r["changed"] for r in rows] == list(map(bool, drawn["changed"]))
    failed = subprocess.run([sys.executable, str(REPO / "src" / "evaluate.py"), "--task", "textgame", "--dataset",
                             str(canonical), "--predictor", "copy", "--no_change_scores", "--output_dir", str(out)],
                            capture_output=True, text=True)
    assert failed.returncode != 0 and "need the model predictor" in failed.stderr


def test_model_predictor_generates_and_scores_with_a_tiny_lm(small_jsonl, tmp_path):
    """The `model` predictor end to end with a random tiny LM: it runs, scores, and counts format errors."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    from tokenizers.trainers import BpeTrainer
    tok.train_from_iterator(["The final answer is: {}"], BpeTrainer(vocab_size=300, special_tokens=["<eos>"],
                                                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=8192, eos_token_id=0, pad_token_id=0))
    model_dir = tmp_path / "lm"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    short = tmp_path / "short"
    make_textgame(["--source", "jsonl", "--input", str(small_jsonl), "--output_dir", str(short), "--no_rules",
                   "--no_examples", "--state_format", "json"])
    ds = load_dataset_dir(short, "test").select(range(4))
    from rlvr_world.evaluation.textgame import GenerationOptions
    metrics = evaluate(ds, "model", tmp_path / "eval", str(model_dir), GenerationOptions(batch_size=2, max_new_tokens=8),
                       headroom_samples=3)
    assert metrics["num_transitions"] == 4
    assert metrics["format_error_rate"] == 100.0  # eight random tokens never make a diff
    lines = (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all("prediction" in json.loads(line) for line in lines)
    # Three sampled answers per transition: random tokens are never right, so no headroom either.
    headroom = metrics["sampling_headroom"]
    assert headroom["num_samples"] == 3 and headroom["overall"]["transitions"] == 4
    assert headroom["overall"]["pass_at_k"] == 0.0 and headroom["overall"]["best_of_k_reward"] == 0.0
    assert "## Sampling headroom (3 samples per transition, temperature 1.0)" in (tmp_path / "eval" / "report.md").read_text()

    # p(empty diff): with a zeroed output layer every token has probability 1/V, so each transition's score is
    # -k log V for the k tokens of the empty diff's tail, the same k for every prompt.
    from rlvr_world.evaluation.textgame import empty_diff_logprobs
    with torch.no_grad():
        model.lm_head.weight.zero_()
    scores = empty_diff_logprobs(model, tokenizer, ds["prompt"], progress=False)
    tokens = [-lp / math.log(len(tokenizer)) for lp in scores]
    assert tokens[0] == pytest.approx(round(tokens[0]), abs=1e-4) and 1 <= round(tokens[0]) <= len(' [], "removed": [], "score": {}}')
    assert tokens == pytest.approx([tokens[0]] * len(ds), abs=1e-4)
    metrics = evaluate(ds, "model", tmp_path / "eval_sep", str(model_dir), GenerationOptions(batch_size=2, max_new_tokens=8),
                       no_change_scores=True)
    sep = metrics["no_change_separation"]
    assert 0.0 <= sep["auroc"] <= 1.0 and 0.0 < sep["p_empty_unchanged"] < 1.0
    assert sep["greedy_accuracy"] == 0.0  # random tokens: never right, so the best threshold is the copy baseline's
    rows = [json.loads(line) for line in (tmp_path / "eval_sep" / "predictions.jsonl").read_text().splitlines()]
    assert all("logp_empty_diff" in row for row in rows)
    assert "## Does the model know when nothing changes?" in (tmp_path / "eval_sep" / "report.md").read_text()
    with pytest.raises(ValueError, match="model predictor"):
        evaluate(ds, "copy", tmp_path / "unused", no_change_scores=True)


def test_sampling_headroom_counts_what_samples_find_beyond_greedy(canonical):
    from rlvr_world.evaluation.textgame import copy_predictions, oracle_predictions, sampling_headroom

    ds = load_dataset_dir(canonical, "test")
    changed = ds["changed"]
    assert 0 < sum(changed) < len(ds)
    greedy = copy_predictions(ds)  # right exactly on the unchanged transitions
    oracle = oracle_predictions(ds)
    # Changed: one sample of two is the gold diff. Unchanged: one malformed sample, one copy.
    samples = [[greedy[i], oracle[i]] if c else ["not json", greedy[i]] for i, c in enumerate(changed)]
    h = sampling_headroom(ds, greedy, samples)
    assert h["num_samples"] == 2
    assert h["changed"]["transitions"] == sum(changed) and h["unchanged"]["transitions"] == len(ds) - sum(changed)
    assert h["changed"] | {"greedy_reward": None, "best_of_k_reward": None} == {
        "transitions": sum(changed), "greedy_accuracy": 0.0, "sample_accuracy": 50.0, "pass_at_k": 100.0,
        "best_beats_greedy": 100.0, "greedy_reward": None, "best_of_k_reward": None}
    # The gold diff earns every term of the task-specific reward: 0.09 + 0.01 + 0.2 + 1.0.
    assert h["changed"]["best_of_k_reward"] == pytest.approx(1.3)
    assert h["changed"]["greedy_reward"] < 0.1  # a copy earns item credit only (acc_changed is 0)
    assert h["unchanged"] | {"greedy_reward": None, "best_of_k_reward": None} == {
        "transitions": len(ds) - sum(changed), "greedy_accuracy": 100.0, "sample_accuracy": 50.0, "pass_at_k": 100.0,
        "best_beats_greedy": 0.0, "greedy_reward": None, "best_of_k_reward": None}
    with pytest.raises(ValueError, match="sample sets"):
        sampling_headroom(ds, greedy, samples[:-1])
    with pytest.raises(ValueError, match="model predictor"):
        evaluate(ds, "copy", "unused", headroom_samples=2)


def test_no_change_separation_scores_how_well_p_empty_tells_the_kinds_apart(canonical):
    from rlvr_world.evaluation.textgame import copy_predictions, no_change_separation, oracle_predictions, score_predictions

    ds = load_dataset_dir(canonical, "test")
    changed = ds["changed"]
    n_changed = sum(changed)
    _, oracle_rows = score_predictions(ds, oracle_predictions(ds))
    _, copy_rows = score_predictions(ds, copy_predictions(ds))
    wrong_rows = [dict(row, correct=False) for row in oracle_rows]
    # Unchanged transitions all above changed ones: separated; the threshold between them takes the empty diff
    # on the unchanged ones and the greedy (here gold) answer on the changed ones.
    apart = [-3.0 if c else -0.5 for c in changed]
    s = no_change_separation(ds, apart, oracle_rows)
    assert s["auroc"] == 1.0 and s["threshold_accuracy"] == 100.0 and s["greedy_accuracy"] == 100.0
    assert s["p_empty_unchanged"] == pytest.approx(math.exp(-0.5), abs=1e-4)
    assert s["p_empty_changed"] == pytest.approx(math.exp(-3.0), abs=1e-4)
    # Greedy answers all wrong: the best threshold answers the empty diff everywhere, the copy baseline.
    copy_acc = 100 * sum(r["correct"] for r in copy_rows) / len(ds)
    assert no_change_separation(ds, apart, wrong_rows)["threshold_accuracy"] == pytest.approx(copy_acc, abs=0.01)
    # The same score everywhere cannot tell them apart; the reverse order is the worst possible.
    assert no_change_separation(ds, [-1.0] * len(ds), oracle_rows)["auroc"] == 0.5
    reversed_ = no_change_separation(ds, [-0.5 if c else -3.0 for c in changed], oracle_rows)
    assert reversed_["auroc"] == 0.0 and reversed_["threshold_accuracy"] == 100.0  # greedy alone is right
    # Half the changed transitions tied with the unchanged ones: AUROC 1 - 0.5 * (share tied) / 1.
    tied = [-0.5 if c and i % 2 else a for i, (c, a) in enumerate(zip(changed, apart))]
    n_tied = sum(1 for i, c in enumerate(changed) if c and i % 2)
    assert no_change_separation(ds, tied, oracle_rows)["auroc"] == pytest.approx(1 - 0.5 * n_tied / n_changed, abs=1e-3)
    with pytest.raises(ValueError, match="scores"):
        no_change_separation(ds, apart[:-1], oracle_rows)


def test_error_breakdown_and_flips_count_why_and_where_answers_fail(canonical, tmp_path):
    from rlvr_world.evaluation.textgame import (copy_predictions, error_breakdown, error_table, exact_mcnemar_p,
                                                oracle_predictions, transition_flips)

    ds = load_dataset_dir(canonical, "test")
    n_changed = sum(ds["changed"])
    n_unchanged = len(ds) - n_changed
    copy = error_breakdown(ds, copy_predictions(ds))
    # "Nothing changes" is right on every unchanged transition and misses the change on every changed one.
    assert copy["unchanged"]["wrong"] == 0 and copy["unchanged"]["transitions"] == n_unchanged
    assert copy["changed"] | {"top_errors": None, "wrong_score": None, "wrong_objects": None} == {
        "transitions": n_changed, "wrong": n_changed, "format_errors": 0, "no_change": n_changed,
        "missed_change": n_changed, "wrong_value": 0, "spurious_change": 0, "invented_names": 0,
        "top_errors": None, "wrong_score": None, "wrong_objects": None}
    assert copy["changed"]["top_errors"][0][0].startswith("missed: ")
    oracle = error_breakdown(ds, oracle_predictions(ds))
    assert oracle["changed"]["wrong"] == oracle["unchanged"]["wrong"] == 0
    garbage = error_breakdown(ds, ["no answer"] * len(ds))
    assert garbage["changed"]["format_errors"] == n_changed and garbage["unchanged"]["format_errors"] == n_unchanged
    table = error_table({"copy": copy})
    assert table[2].startswith(f"| copy | unchanged ({n_unchanged}) | 0 | 0 |")

    def scored(predictions):
        out = tmp_path / str(len(list(tmp_path.iterdir())))
        evaluate(ds, predictions, out)
        return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]

    copy_rows, oracle_rows = scored("copy"), scored("oracle")
    assert transition_flips(copy_rows, oracle_rows) == {
        "unchanged": {"fixed": 0, "broken": 0, "p_value": 1.0},
        "changed": {"fixed": n_changed, "broken": 0, "p_value": 2 * 0.5**n_changed}}
    assert transition_flips(oracle_rows, copy_rows)["changed"] | {"p_value": None} == {
        "fixed": 0, "broken": n_changed, "p_value": None}
    # The exact McNemar test: 3 against 4 is noise; 17 against 2 is not.
    assert exact_mcnemar_p(3, 4) == 1.0 and exact_mcnemar_p(4, 3) == 1.0
    assert exact_mcnemar_p(17, 2) == pytest.approx(2 * (1 + 19 + 171) / 2**19)
    assert exact_mcnemar_p(0, 0) == 1.0
    with pytest.raises(ValueError, match="not the same transitions"):
        transition_flips(copy_rows, oracle_rows[:-1])
    metrics = json.loads((tmp_path / "0" / "metrics.json").read_text())
    assert metrics["error_breakdown"]["changed"]["no_change"] == n_changed
    assert f"| copy | changed ({n_changed}) |" in (tmp_path / "0" / "report.md").read_text()


def test_make_dataset_command_on_generated_games_is_deterministic(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = subprocess.run(
            [sys.executable, str(REPO / "src" / "make_dataset.py"), "textgame", "--source", "generated",
             "--episodes_per_game", "3", "--seed", "7", "--no_rules", "--no_examples", "--state_format", "json",
             "--output_dir", str(out)], check=True, capture_output=True, text=True)
        assert "heldout_games:" in result.stdout
        outs.append(load_dataset_dir(out))
    a, b = outs
    assert set(a) == {"train", "heldout_transitions", "heldout_games"}
    assert not set(a["train"]["game"]) & set(a["heldout_games"]["game"])
    for split in a:
        assert a[split]["prompt"] == b[split]["prompt"] and a[split]["ground_truth"] == b[split]["ground_truth"]
    # Every generated transition round-trips through prompt -> gold answer -> apply -> metric at 100%.
    for split in a.values():
        reward = get_reward_funcs(["textgame_binary"])[0]
        gold = [c[0]["content"] for c in split["completion"]]
        assert reward(completions=gold, data_state=split["data_state"], ground_truth=split["ground_truth"]) == [1.0] * len(split)
    card = (tmp_path / "a" / "README.md").read_text()
    assert "procedural text-game generator (seed 7)" in card and "| heldout_games |" in card
