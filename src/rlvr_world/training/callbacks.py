"""Trainer callbacks shared by the SFT and GRPO entry points.

- `JsonlLogCallback`: every Trainer log (loss, rewards, KL, timings, ...) as one JSON line in
  `output_dir/log.jsonl`, with the wall-clock time since training started; curves are drawn from it.
- `AccuracyCallback`: greedy-decodes a held-out split every N optimizer steps and appends the task
  accuracy to `output_dir/accuracy.jsonl` (and the Trainer log), giving accuracy-vs-step curves.
"""

from __future__ import annotations

import json
import logging
import os
import time

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


def _append_jsonl(path: str, record: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


class JsonlLogCallback(TrainerCallback):
    """Append each log dict (plus `step`, `epoch`, `wall_s`) to `<output_dir>/log.jsonl` on the main process."""

    def __init__(self, filename: str = "log.jsonl"):
        self.filename = filename
        self._start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        wall = time.perf_counter() - self._start if self._start is not None else None
        record = {"step": state.global_step, "epoch": state.epoch, "wall_s": wall, **logs}
        _append_jsonl(os.path.join(args.output_dir, self.filename), record)


class TimeLimitCallback(TrainerCallback):
    """Stop training once `max_seconds` of training have passed (the Trainer then saves as usual)."""

    def __init__(self, max_seconds: float):
        self.max_seconds = max_seconds
        self._start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._start is not None and time.perf_counter() - self._start >= self.max_seconds:
            logger.warning("time limit of %.0f s reached at step %d: stopping", self.max_seconds, state.global_step)
            control.should_training_stop = True
            control.should_save = True


def finished_train_seconds(run_dir: str) -> float | None:
    """Training wall time of a finished Trainer run (the `wall_s` of the final `train_runtime` record of its
    log.jsonl), or None while it is still training or has no log."""
    path = os.path.join(run_dir, "log.jsonl")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        finals = [json.loads(line) for line in f if '"train_runtime"' in line]
    return float(finals[-1].get("wall_s") or finals[-1]["train_runtime"]) if finals else None


class MatchTrainTimeCallback(TimeLimitCallback):
    """Equal-wall-time controls: a time limit that is the training time of the run in `run_dir` (started
    beside this one, or already done), known once that run has finished; until then no limit."""

    def __init__(self, run_dir: str, poll_seconds: float = 1.0):
        super().__init__(float("inf"))
        self.run_dir = run_dir
        self.poll_seconds = poll_seconds
        self._polled = float("-inf")

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if self.max_seconds == float("inf") and now - self._polled >= self.poll_seconds:  # the log, every second
            self._polled = now
            self.max_seconds = finished_train_seconds(self.run_dir) or float("inf")
        super().on_step_end(args, state, control, **kwargs)


def standard_callbacks(task, script_args, training_args, tokenizer) -> list:
    """The callbacks every entry point uses: JSONL logs, held-out accuracy, and the time limit."""
    callbacks = [JsonlLogCallback()]
    accuracy = make_accuracy_callback(task, script_args, training_args, tokenizer)
    if accuracy is not None:
        callbacks.append(accuracy)
    if getattr(script_args, "max_train_seconds", None):
        callbacks.append(TimeLimitCallback(script_args.max_train_seconds))
    return callbacks


class AccuracyCallback(TrainerCallback):
    """Greedy task accuracy on held-out rows during training.

    `generate(model, rows) -> list[str]` produces completions; `score(completions, rows) ->
    list[dict]` marks each one `correct`/`changed`. Runs on the main process only, at the first
    step of a run (unless resumed past it), every `every_steps` steps, and at the end.
    """

    def __init__(self, rows, generate, score, every_steps: int = 0, filename: str = "accuracy.jsonl",
                 at_start: bool = True):
        self.rows = rows
        self.generate = generate
        self.score = score
        self.every_steps = every_steps
        self.filename = filename
        self.at_start = at_start
        self._done_steps: set[int] = set()
        self._start = None
        self.history: list[dict] = []

    def _evaluate(self, args, state, model):
        if state.global_step in self._done_steps:
            return None
        self._done_steps.add(state.global_step)
        if not state.is_world_process_zero:
            return None
        was_training = model.training
        model.eval()
        t0 = time.perf_counter()
        try:
            completions = self.generate(model, self.rows)
        finally:
            if was_training:
                model.train()
        results = self.score(completions, self.rows)
        n = len(results)
        changed = [r for r in results if r["changed"]]
        unchanged = [r for r in results if not r["changed"]]

        def pct(xs):
            return round(100.0 * sum(r["correct"] for r in xs) / len(xs), 2) if xs else None

        record = {
            "step": state.global_step,
            "wall_s": time.perf_counter() - self._start if self._start is not None else None,
            "accuracy_overall": pct(results),
            "accuracy_unchanged": pct(unchanged),
            "accuracy_changed": pct(changed),
            "format_error_rate": round(100.0 * sum(r["format_error"] for r in results) / n, 2) if n else None,
            "num_transitions": n,
            "eval_seconds": round(time.perf_counter() - t0, 2),
        }
        for key in ("f1", "precision", "recall"):  # graded tasks (web pages) also score each answer
            if n and all(key in r for r in results):
                record[key] = round(100.0 * sum(r[key] for r in results) / n, 2)
        self.history.append(record)
        _append_jsonl(os.path.join(args.output_dir, self.filename), record)
        logger.warning("step %d held-out accuracy: %s", state.global_step,
                       {k: record[k] for k in ("accuracy_overall", "accuracy_unchanged", "accuracy_changed")})
        return record

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._start = time.perf_counter()
        if self.at_start and model is not None:
            self._evaluate(args, state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every_steps and state.global_step % self.every_steps == 0 and model is not None:
            self._evaluate(args, state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is not None:
            self._evaluate(args, state, model)


def make_accuracy_callback(task, script_args, training_args, tokenizer):
    """The `AccuracyCallback` a recipe asks for (`accuracy_eval_split`), or None."""
    if not script_args.accuracy_eval_split or task.score_completions is None or task.load_eval_rows is None:
        return None
    rows = task.load_eval_rows(script_args, script_args.accuracy_eval_split)
    if script_args.accuracy_eval_samples is not None and script_args.accuracy_eval_samples < len(rows):
        rows = rows.shuffle(seed=1234).select(range(script_args.accuracy_eval_samples))
    max_new = script_args.accuracy_eval_max_new_tokens or getattr(training_args, "max_completion_length", None) or 512
    batch_size = script_args.accuracy_eval_batch_size

    from rlvr_world.evaluation.textgame import GenerationOptions, generate_completions

    greedy = GenerationOptions(batch_size=batch_size, max_new_tokens=max_new)

    def generate(model, rows):
        return generate_completions(model, tokenizer, rows["prompt"], greedy, progress=False)

    def score(completions, rows):
        return task.score_completions(completions, [rows[i] for i in range(len(rows))])

    return AccuracyCallback(rows, generate, score, every_steps=script_args.accuracy_eval_steps)
