"""Reusing a finished evaluation: its result is keyed on what it depends on, so a re-run of a demo skips
the evaluations of models that have not changed (a pre-trained base's zero-/few-shot rows, say)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path


def evaluation_key(rows, model_dir: str | None, generation, headroom_samples: int, no_change_scores: bool = False) -> str:
    """What an evaluation's result depends on: the rows, the model's weight files (path, size, modification
    time: a retrained model changes them), the decoding options, the headroom samples and whether the
    no-change scores are asked for (only then part of the key, so earlier keys stay valid)."""
    dirs = [Path(model_dir)] if model_dir else []
    adapter = dirs[0] / "adapter_config.json" if dirs else None
    if adapter and adapter.is_file():  # a LoRA adapter: the model it loads on counts too
        dirs.append(Path(json.loads(adapter.read_text())["base_model_name_or_path"]))
    files = sorted(f for d in dirs for f in d.glob("*.safetensors"))
    weights = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    payload = [rows.to_list(), weights, dataclasses.asdict(generation), headroom_samples]
    if no_change_scores:
        payload.append("no_change_scores")
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def cached_evaluation(eval_dir: Path, key: str, evaluate: Callable[[], dict]) -> dict:
    """``evaluate()``'s metrics, or those written by an earlier finished evaluation with the same key.

    The key is written after ``metrics.json``: an evaluation killed half-way is run again.
    """
    key_file = eval_dir / "evaluation_key"
    if key_file.is_file() and key_file.read_text() == key and (eval_dir / "metrics.json").is_file():
        return json.loads((eval_dir / "metrics.json").read_text())
    metrics = evaluate()
    key_file.write_text(key)
    return metrics
