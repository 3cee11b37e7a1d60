"""Uniform per-dimension discretisation of continuous actions into action tokens.

Each action dimension is cut into ``num_bins`` equal bins between its minimum and maximum over
the training split: ``bin = floor(clip((a - min) / (max - min), 0, 1) * num_bins)``, clipped to
``num_bins - 1``. Decoding returns bin centres. The ranges travel with a checkpoint as a small
JSON file so a world model can always re-tokenise actions the way it was trained.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

ACTION_BINNER_FILE = "action_binner.json"

ArrayLike = np.ndarray | torch.Tensor


class ActionBinner:
    """Maps actions ``[..., D]`` to integer bins ``[..., D]`` in ``0 .. num_bins - 1`` and back.

    Args:
        low: per-dimension minimum, length ``D`` (``None`` until :meth:`fit`).
        high: per-dimension maximum, length ``D``.
        num_bins: bins per dimension (256 in the paper).

    A dimension with ``high == low`` (a constant action) always maps to bin 0 and decodes to
    ``low``.
    """

    def __init__(
        self,
        low: Iterable[float] | None = None,
        high: Iterable[float] | None = None,
        num_bins: int = 256,
    ):
        if num_bins < 1:
            raise ValueError(f"num_bins must be positive, got {num_bins}")
        self.num_bins = int(num_bins)
        self.low = None if low is None else np.asarray(low, dtype=np.float64).reshape(-1)
        self.high = None if high is None else np.asarray(high, dtype=np.float64).reshape(-1)
        if (self.low is None) != (self.high is None):
            raise ValueError("Give both low and high, or neither.")
        if self.low is not None:
            if self.low.shape != self.high.shape:
                raise ValueError(f"low {self.low.shape} and high {self.high.shape} differ in length")
            if np.any(self.high < self.low) or not np.all(np.isfinite(self.low) & np.isfinite(self.high)):
                raise ValueError("Action ranges must be finite with high >= low.")

    # ------------------------------------------------------------------ fitting
    @property
    def is_fitted(self) -> bool:
        return self.low is not None

    @property
    def action_dim(self) -> int:
        self._require_fitted()
        return int(self.low.shape[0])

    def fit(self, actions: ArrayLike | Iterable[ArrayLike]) -> ActionBinner:
        """Sets the ranges to the per-dimension min/max of ``actions``.

        ``actions`` is one array ``[..., D]`` or an iterable of them (e.g. one per episode).
        Returns ``self``.
        """
        chunks = [actions] if isinstance(actions, np.ndarray | torch.Tensor) else list(actions)
        if not chunks:
            raise ValueError("Cannot fit an ActionBinner on no actions.")
        flat = [_to_numpy(chunk) for chunk in chunks]
        flat = [chunk.reshape(-1, chunk.shape[-1]) for chunk in flat]
        dims = {chunk.shape[-1] for chunk in flat}
        if len(dims) != 1:
            raise ValueError(f"Actions disagree on their dimension: {sorted(dims)}")
        stacked = np.concatenate(flat, axis=0).astype(np.float64)
        if stacked.shape[0] == 0:
            raise ValueError("Cannot fit an ActionBinner on no actions.")
        if not np.all(np.isfinite(stacked)):
            raise ValueError("Actions contain NaN or infinite values.")
        self.low, self.high = stacked.min(axis=0), stacked.max(axis=0)
        return self

    # ------------------------------------------------------------------ mapping
    def bin(self, actions: ArrayLike) -> ArrayLike:
        """Continuous actions ``[..., D]`` -> int64 bins ``[..., D]`` (same array library)."""
        self._require_fitted()
        actions = actions if isinstance(actions, torch.Tensor) else np.asarray(actions)
        self._check_dim(actions)
        if bool(_isnan(actions).any()):
            raise ValueError("Cannot bin NaN actions.")
        if isinstance(actions, torch.Tensor):
            low, width = self._range_tensors(actions.device)
            unit = (actions.to(torch.float64) - low) / width.clamp_min(_TINY)
            bins = torch.floor(unit.clamp(0.0, 1.0) * self.num_bins).clamp(max=self.num_bins - 1)
            return torch.where(width > 0, bins, torch.zeros_like(bins)).to(torch.int64)
        width = self.high - self.low
        unit = (actions.astype(np.float64) - self.low) / np.maximum(width, _TINY)
        bins = np.minimum(np.floor(np.clip(unit, 0.0, 1.0) * self.num_bins), self.num_bins - 1)
        return np.where(width > 0, bins, 0).astype(np.int64)

    def unbin(self, bins: ArrayLike) -> ArrayLike:
        """Bins ``[..., D]`` -> bin-centre actions ``[..., D]`` (float32)."""
        self._require_fitted()
        bins = bins if isinstance(bins, torch.Tensor) else np.asarray(bins)
        self._check_dim(bins)
        if bool((bins < 0).any()) or bool((bins >= self.num_bins).any()):
            raise ValueError(f"Bins must lie in 0..{self.num_bins - 1}")
        if isinstance(bins, torch.Tensor):
            low, width = self._range_tensors(bins.device)
            centres = low + (bins.to(torch.float64) + 0.5) / self.num_bins * width
            return centres.to(torch.float32)
        centres = self.low + (bins.astype(np.float64) + 0.5) / self.num_bins * (self.high - self.low)
        return centres.astype(np.float32)

    __call__ = bin

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        self._require_fitted()
        return {"num_bins": self.num_bins, "low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, config: dict) -> ActionBinner:
        return cls(low=config["low"], high=config["high"], num_bins=config.get("num_bins", 256))

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Writes ``action_binner.json`` into ``save_directory`` and returns its path."""
        path = Path(save_directory) / ACTION_BINNER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> ActionBinner:
        """Loads from a checkpoint directory (or directly from the JSON file's path)."""
        path = Path(directory)
        if path.is_dir():
            path = path / ACTION_BINNER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"No {ACTION_BINNER_FILE} at {path}")
        return cls.from_dict(json.loads(path.read_text()))

    def __repr__(self) -> str:
        if not self.is_fitted:
            return f"ActionBinner(num_bins={self.num_bins}, unfitted)"
        return f"ActionBinner(num_bins={self.num_bins}, low={self.low.tolist()}, high={self.high.tolist()})"

    # ------------------------------------------------------------------ helpers
    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError("ActionBinner has no ranges yet: call fit(actions) or from_pretrained(dir).")

    def _check_dim(self, values: ArrayLike) -> None:
        if values.shape[-1] != self.low.shape[0]:
            raise ValueError(f"Expected actions [..., {self.low.shape[0]}], got shape {tuple(values.shape)}")

    def _range_tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        low = torch.as_tensor(self.low, dtype=torch.float64, device=device)
        width = torch.as_tensor(self.high - self.low, dtype=torch.float64, device=device)
        return low, width


_TINY = 1e-300  # stands in for a zero range in the division; such dimensions are then forced to bin 0


def _isnan(values: ArrayLike) -> ArrayLike:
    if isinstance(values, torch.Tensor):
        return torch.isnan(values) if values.is_floating_point() else torch.zeros_like(values, dtype=torch.bool)
    return np.isnan(values) if np.issubdtype(values.dtype, np.floating) else np.zeros(values.shape, dtype=bool)


def _to_numpy(values: ArrayLike) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)
