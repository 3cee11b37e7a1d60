"""`VideoMetricsCallback`: held-out video metrics against the optimizer step, during GRPO or MLE.

At the start, every `every_steps` steps and at the end, the model predicts a fixed set of held-out
windows (sampled as in evaluation: temperature 1, top-k 100, the same seed every time, so the
curve moves only when the model does) and `video_metrics.jsonl` gets one line with MSE, MAE, PSNR,
SSIM, LPIPS (when its real weights are here) and the repetition rate. It reuses the evaluation's
predictor and metric functions (`rlvr_world.evaluation.video`).
"""

from __future__ import annotations

import logging
import os
import time

import torch
from transformers import TrainerCallback

from rlvr_world.training.callbacks import _append_jsonl

logger = logging.getLogger(__name__)

METRICS_FILE = "video_metrics.jsonl"


class VideoMetricsCallback(TrainerCallback):
    def __init__(self, processor, windows, picks, every_steps: int = 0, batch_size: int = 16, seed: int = 0,
                 with_lpips: bool = True, filename: str = METRICS_FILE):
        self.processor, self.windows, self.picks = processor, windows, [int(i) for i in picks]
        self.every_steps, self.batch_size, self.seed = every_steps, batch_size, seed
        self.with_lpips, self.filename = with_lpips, filename
        self._lpips = None
        self._done: set[int] = set()
        self._start = None
        self.history: list[dict] = []

    def _lpips_model(self):
        if self._lpips is None and self.with_lpips:
            from rlvr_world.metrics.video import LPIPS, lpips_available

            self._lpips = LPIPS() if lpips_available() else False
        return self._lpips or None

    @torch.no_grad()
    def evaluate(self, model, step: int) -> dict:
        from rlvr_world.evaluation.video import SamplingOptions, WorldModelPredictor, frame_metrics, repetition, summarise

        device = str(next(model.parameters()).device)
        was_training = model.training
        model.eval()
        predictor = WorldModelPredictor(model, self.processor, SamplingOptions(), device, seed=self.seed)
        lpips_model = self._lpips_model()
        k = self.processor.num_context_frames
        t0 = time.perf_counter()
        per_frame: dict[str, list[torch.Tensor]] = {}
        try:
            for lo in range(0, len(self.picks), self.batch_size):
                items = [self.windows[i] for i in self.picks[lo : lo + self.batch_size]]
                pixels = torch.stack([it["pixel_values"] for it in items])
                actions = torch.stack([it["actions"] for it in items])
                prediction = predictor(pixels, actions)
                values = frame_metrics(prediction.frames, pixels[:, k:], lpips_model)
                repeats = repetition(prediction)
                if repeats is not None:
                    values["repeated"] = repeats
                for name, value in values.items():
                    per_frame.setdefault(name, []).append(value)
        finally:
            if was_training:
                model.train()
        summary = summarise({name: torch.cat(parts) for name, parts in per_frame.items()})
        summary.pop("per_step", None)
        record = {"step": step, "wall_s": time.perf_counter() - self._start if self._start else None,
                  **{name: round(value, 6) for name, value in summary.items() if value is not None},
                  "num_windows": len(self.picks), "eval_seconds": round(time.perf_counter() - t0, 2)}
        return record

    def _maybe_evaluate(self, args, state, model):
        if model is None or state.global_step in self._done:
            return
        self._done.add(state.global_step)
        if not state.is_world_process_zero:
            return
        record = self.evaluate(model, state.global_step)
        self.history.append(record)
        _append_jsonl(os.path.join(args.output_dir, self.filename), record)
        logger.warning("step %d held-out video metrics: %s", state.global_step,
                       {k: record[k] for k in ("mae", "mse", "lpips", "repetition_rate") if k in record})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._start = time.perf_counter()
        self._maybe_evaluate(args, state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every_steps and state.global_step % self.every_steps == 0:
            self._maybe_evaluate(args, state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._maybe_evaluate(args, state, model)
