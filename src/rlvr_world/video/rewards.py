"""Video rewards: decode each completion once with the frozen visual tokenizer, score its frames.

TRL calls every reward callable of a GRPO step in turn with the same batch
(``reward(prompts, completions, completion_ids, **columns, **rollout_fields)``). Decoding the
visual tokens is the expensive part, so all video reward callables of a process share one
:class:`VideoRewardScorer` (:func:`shared_scorer`), which keeps the last batch it decoded: the
first callable of a step decodes (batched) and computes its metric, the others reuse the decoded
frames and every metric already computed (LPIPS included). Combining terms is therefore free in
either form: TRL's ``reward_weights`` over several registered callables (``video_mae`` +
``video_lpips``), or one callable with several weighted terms (``video_mae_lpips``, the paper's
``-(MAE + LPIPS)``); both read the same decoded frames.

What a call needs:

* ``completion_ids``: the sampled ids, laid out as the processor says (single-step: the frame's
  codes, then EOS; multi-step: frame codes with the true action tokens between frames).
* ``target_frames`` (dataset column): the ground truth of the predicted steps, one entry per
  completion, uint8 ``[T, H, W, 3]`` (or ``[H, W, 3]`` for one frame) as an array or nested
  lists, which is how a ``datasets`` ``Array4D``/``Sequence`` column of uint8 comes back; a list
  of PNG-encoded frames (``bytes``, ``{"bytes": ...}`` or PIL images, as an ``Image`` column
  gives them) works too.
* ``video_processor``: the :class:`VideoWorldModelProcessor` with the frozen tokenizer (the video
  rollout hook passes it), unless the scorer was built with one.
* ``context_codes`` (multi-step): each completion's context-frame codes ``[1, hc, wc]`` (the
  rollout passes them), against which the future frames decode.

Each reward is higher-is-better: ``-MAE``, ``-MSE``, PSNR (dB), SSIM, ``-LPIPS`` per predicted
frame, averaged over the frames; multi-step also ``-motion MAE`` (the MAE over the pixels that move
between true frames or since the first, frames 1..T-1: `rlvr_world.metrics.video.moving_region_mae`). A malformed completion (wrong length, an id outside the visual
code range) gets the term's worst possible value and is not decoded; bad dataset rows (a target of
the wrong shape) raise an error naming the row and the column.

The tokenizer never trains: it is put in eval mode with ``requires_grad`` off and decodes under
``torch.no_grad``. Each process (DDP / DeepSpeed rank) builds its own scorer, LPIPS and decoder.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rlvr_world.data.frames import frames_to_tensor
from rlvr_world.metrics.video import LPIPS, mae, moving_region_mae, mse, psnr, ssim

from .processor import MULTI_STEP, VISUAL, VideoWorldModelProcessor

TARGET_COLUMN = "target_frames"

# Pixel terms: per-frame metric, sign that makes higher better, worst reward (pixels in [0, 1]:
# MAE and MSE are at most 1, PSNR at least 0 dB, SSIM at least -1). LPIPS is handled by the scorer.
_PIXEL_TERMS: dict[str, tuple[Callable, float, float]] = {
    "mae": (mae, -1.0, -1.0),
    "mse": (mse, -1.0, -1.0),
    "psnr": (psnr, 1.0, 0.0),
    "ssim": (ssim, 1.0, -1.0),
}
# Sequence terms need each row's frames in order: the MAE over the pixels that move between true
# frames or since the first (multi-step only; frames 1..T-1, the ones the repetition rate can flag).
_SEQUENCE_TERMS: dict[str, tuple[Callable, float, float]] = {
    "motion_mae": (moving_region_mae, -1.0, -1.0),
}
_FRAME_TERMS = {**_PIXEL_TERMS, **_SEQUENCE_TERMS}  # name -> (metric, sign, worst reward)
TERMS = (*_PIXEL_TERMS, *_SEQUENCE_TERMS, "lpips")

Decoder = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


# ------------------------------------------------------------------------------------ parsing


def completion_kinds(processor: VideoWorldModelProcessor, num_frames: int) -> torch.Tensor:
    """Position kinds (VISUAL, ACTION, EOS) of a completion predicting ``num_frames`` frames."""
    return processor.token_kinds(num_frames)[processor.prompt_length :]


def completion_codes(
    processor: VideoWorldModelProcessor, ids: Sequence[int], num_frames: int, kinds: torch.Tensor | None = None
) -> torch.Tensor | None:
    """A completion's visual codes ``[T, h, w]``, or None when it does not follow the layout.

    The layout is the processor's (``token_kinds``): the row may not be longer than the layout
    and must hold every visual position (a single-step row may lack its final EOS), and every
    visual token must be a code of the visual codebook. Ids at action/EOS positions are not
    scored (the rollout inserts the true actions)."""
    kinds = completion_kinds(processor, num_frames) if kinds is None else kinds
    ids = torch.as_tensor(list(ids), dtype=torch.long)
    visual = kinds == VISUAL
    last_visual = int(visual.nonzero().max()) if visual.any() else -1
    if ids.numel() > kinds.numel() or ids.numel() <= last_visual:
        return None
    codes = ids[visual[: ids.numel()]]
    if codes.numel() != num_frames * processor.tokens_per_frame:
        return None
    if bool(((codes < 0) | (codes >= processor.num_visual_codes)).any()):
        return None
    return codes.reshape(num_frames, *processor.frame_token_shape)


def _image_to_array(value: Any) -> np.ndarray:
    from PIL import Image

    if isinstance(value, dict):
        value = value.get("bytes")
    if isinstance(value, (bytes, bytearray)):
        value = Image.open(io.BytesIO(value))
    return np.asarray(value.convert("RGB"))


def _is_encoded(value: Any) -> bool:
    from PIL import Image

    return isinstance(value, (bytes, bytearray, dict, Image.Image))


def target_to_tensor(value: Any, row: int, column: str = TARGET_COLUMN) -> torch.Tensor:
    """One row of the ground-truth column -> float ``[T, 3, H, W]`` in [0, 1] (see the module doc)."""
    try:
        if _is_encoded(value) or (isinstance(value, (list, tuple)) and value and _is_encoded(value[0])):
            frames = [_image_to_array(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            array = np.stack(frames)
        else:
            array = value.cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    except Exception as err:  # an unreadable image, ragged lists
        raise ValueError(f"row {row}, column {column!r}: cannot read the frames ({err})") from None
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"row {row}, column {column!r}: expected uint8 frames [T, H, W, 3], got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 255:
            raise ValueError(f"row {row}, column {column!r}: expected uint8 pixels 0..255, got {array.dtype}")
        array = array.astype(np.uint8)
    return frames_to_tensor(array)


# ------------------------------------------------------------------------------------ scoring


@dataclass
class DecodedBatch:
    """One batch of completions decoded once, with every metric computed on it so far."""

    key: tuple  # prompts and completion ids
    columns: tuple  # the target and context lists themselves (see `VideoRewardScorer.decoded`)
    valid: torch.Tensor  # [B] bool: follows the layout (only these rows are decoded and scored)
    predictions: list[torch.Tensor | None]  # per row [T, 3, H, W] in [0, 1] (None where invalid)
    targets: list[torch.Tensor]  # per row [T, 3, H, W] in [0, 1]
    target_keys: list[bytes]  # digest of each row's target (rows of a GRPO group share one)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # term -> [B] frame-mean (NaN where invalid)


class VideoRewardScorer:
    """Decodes completions with the frozen visual tokenizer (once per batch) and scores the frames.

    Args:
        processor: the world model's processor (its tokenizer decodes); None to take the
            ``video_processor`` the rollout passes with every call.
        decode: ``decode(frame_codes [B, T, h, w], context_codes [B, 1, hc, wc] | None) -> frames
            [B, T, 3, H, W]``; defaults to ``processor.decode_frames``.
        lpips_net: backbone of the LPIPS term (the paper's reward uses VGG).
        decode_batch_size: completions decoded per tokenizer call (bounds memory).
    """

    def __init__(
        self,
        processor: VideoWorldModelProcessor | None = None,
        decode: Decoder | None = None,
        lpips_net: str = "vgg",
        decode_batch_size: int = 64,
    ):
        self.processor = processor
        self.decode = decode
        self.lpips_net = lpips_net
        self.decode_batch_size = decode_batch_size
        self._lpips: LPIPS | None = None
        self._last: DecodedBatch | None = None
        self.num_decoded = 0  # completions decoded so far (the tests and benchmarks read it)

    # ------------------------------------------------------------------ LPIPS
    def lpips_model(self) -> LPIPS:
        """The LPIPS metric, built on first use; raises ``LPIPSWeightsNotFoundError`` when the
        converted weights are missing (reward factories call it at start-up for that reason)."""
        if self._lpips is None:
            self._lpips = LPIPS(self.lpips_net)
        return self._lpips

    def worst(self, term: str) -> float:
        if term == "lpips":
            return -self.lpips_model().max_distance
        return _FRAME_TERMS[term][2]

    # ------------------------------------------------------------------ decoding
    def _processor(self, video_processor) -> VideoWorldModelProcessor:
        processor = self.processor
        if processor is None and video_processor is not None:
            processor = video_processor[0] if isinstance(video_processor, (list, tuple)) else video_processor
        if processor is None:
            raise ValueError(
                "video rewards need the world model's processor: the video rollout passes `video_processor`, "
                "or build the scorer with one"
            )
        if self.decode is None:
            tokenizer = processor.visual_tokenizer
            if tokenizer.training or any(p.requires_grad for p in tokenizer.parameters()):
                tokenizer.eval().requires_grad_(False)  # frozen: the rewards never train it
        return processor

    def _decode(self, processor, codes: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        decode = self.decode or processor.decode_frames
        chunks = []
        with torch.no_grad():
            for i in range(0, codes.shape[0], self.decode_batch_size):
                part = None if context is None else context[i : i + self.decode_batch_size]
                chunks.append(decode(codes[i : i + self.decode_batch_size], part).float().clamp(0, 1))
        self.num_decoded += codes.shape[0]
        return torch.cat(chunks)

    def decoded(
        self,
        completion_ids: Sequence[Sequence[int]],
        target_frames: Sequence[Any],
        prompts: Sequence[Any] | None = None,
        context_codes: Sequence[Any] | None = None,
        video_processor: Any = None,
    ) -> DecodedBatch:
        """The batch decoded: from the cache when the last call had the same batch, else now.

        TRL hands every reward callable of a step the same column lists, so the cache matches
        the prompts and completion ids by value and the target/context lists by identity (the
        entry holds them, so their ids cannot be reused by other lists while it lives)."""
        key = (
            tuple(map(str, prompts)) if prompts is not None else None,
            tuple(tuple(int(t) for t in ids) for ids in completion_ids),
        )
        last = self._last
        if last is not None and last.key == key and last.columns[0] is target_frames and last.columns[1] is context_codes:
            return last
        if len(target_frames) != len(completion_ids):
            raise ValueError(f"{len(completion_ids)} completions but {len(target_frames)} rows of {TARGET_COLUMN!r}")
        processor = self._processor(video_processor)
        multi_step = processor.mode == MULTI_STEP
        if multi_step and context_codes is None:
            raise ValueError("multi-step video rewards need each completion's `context_codes` (the video rollout passes them)")
        targets = [target_to_tensor(value, row) for row, value in enumerate(target_frames)]
        target_keys = [hashlib.blake2b(t.numpy().tobytes(), digest_size=16).digest() for t in targets]

        codes: list[torch.Tensor | None] = []
        layouts: dict[int, torch.Tensor] = {}  # frames -> completion kinds
        for row, (ids, target) in enumerate(zip(completion_ids, targets)):
            frames = target.shape[0]
            if not multi_step and frames != 1:
                raise ValueError(f"row {row}, column {TARGET_COLUMN!r}: single-step targets hold one frame, got {frames}")
            if frames not in layouts:
                layouts[frames] = completion_kinds(processor, frames)
            codes.append(completion_codes(processor, ids, frames, layouts[frames]))
        valid = torch.tensor([c is not None for c in codes], dtype=torch.bool)

        predictions: list[torch.Tensor | None] = [None] * len(codes)
        # Rows with the same number of frames decode together, in batches.
        by_length: dict[int, list[int]] = {}
        for row, c in enumerate(codes):
            if c is not None:
                by_length.setdefault(c.shape[0], []).append(row)
        for rows in by_length.values():
            context = None
            if multi_step:
                shape = (1, *processor.context_token_shape)
                context = torch.stack([torch.as_tensor(context_codes[r]).long().cpu().reshape(shape) for r in rows])
            frames = self._decode(processor, torch.stack([codes[r] for r in rows]), context)
            for r, pred in zip(rows, frames):
                targets[r] = targets[r].to(pred.device)  # score where the tokenizer decodes
                if pred.shape != targets[r].shape:
                    raise ValueError(
                        f"row {r}, column {TARGET_COLUMN!r}: frames {tuple(targets[r].shape)} but the tokenizer "
                        f"decodes {tuple(pred.shape)}"
                    )
                predictions[r] = pred
        self._last = DecodedBatch(key, (target_frames, context_codes), valid, predictions, targets, target_keys)
        return self._last

    # ------------------------------------------------------------------ metrics
    def term(self, batch: DecodedBatch, name: str) -> torch.Tensor:
        """``[B]`` raw metric (MAE, MSE, PSNR, SSIM or LPIPS) averaged over each row's frames; NaN where invalid."""
        if name not in TERMS:
            raise ValueError(f"unknown video reward term {name!r}; known: {list(TERMS)}")
        if name not in batch.terms:
            values = torch.full((len(batch.targets),), float("nan"))
            rows = [r for r, pred in enumerate(batch.predictions) if pred is not None]
            if name == "lpips":
                per_row = self._lpips_per_row(batch, rows)
            elif name in _SEQUENCE_TERMS:
                per_row = {}
                for r in rows:
                    if batch.targets[r].shape[0] < 2:
                        raise ValueError(
                            f"row {r}, column {TARGET_COLUMN!r}: the {name} term needs two or more target frames "
                            f"(a multi-step task), got {batch.targets[r].shape[0]}"
                        )
                    per_row[r] = _SEQUENCE_TERMS[name][0](batch.predictions[r], batch.targets[r])
            elif rows:
                pred = torch.cat([batch.predictions[r] for r in rows])
                target = torch.cat([batch.targets[r] for r in rows])
                # Rows may differ in their number of frames.
                per_frame = _PIXEL_TERMS[name][0](pred, target)
                per_row = dict(zip(rows, per_frame.split([batch.predictions[r].shape[0] for r in rows])))
            for r in rows:
                values[r] = per_row[r].float().mean().cpu()
            batch.terms[name] = values
        return batch.terms[name]

    def _lpips_per_row(self, batch: DecodedBatch, rows: list[int]) -> dict[int, torch.Tensor]:
        """LPIPS per frame of each row; rows with the same ground truth (a GRPO group) share one
        pass of the backbone over it."""
        groups: dict[bytes, list[int]] = {}
        for r in rows:
            groups.setdefault(batch.target_keys[r], []).append(r)
        per_row = {}
        for group in groups.values():
            preds = torch.stack([batch.predictions[r] for r in group])
            model = self.lpips_model().to(preds.device)
            with torch.no_grad():
                distances = model.distance_to(preds, batch.targets[group[0]])
            per_row.update(zip(group, distances))
        return per_row

    def rewards(self, weights: dict[str, float], **call) -> list[float]:
        """``sum_t weight_t * reward_t`` per completion, where reward_t is the higher-is-better form
        of term t (``-MAE``, ``-MSE``, PSNR, SSIM, ``-LPIPS``); the weighted worst values where invalid."""
        batch = self.decoded(**call)
        total = torch.zeros(len(batch.targets), dtype=torch.float64)
        worst = 0.0
        for name, weight in weights.items():
            sign = -1.0 if name == "lpips" else _FRAME_TERMS[name][1]
            total += weight * sign * self.term(batch, name).double()
            worst += weight * self.worst(name)
        total[~batch.valid] = worst
        return total.tolist()

    @property
    def last_batch(self) -> DecodedBatch | None:
        return self._last


# ------------------------------------------------------------------------------ reward callables

_SHARED: dict[tuple, VideoRewardScorer] = {}


def shared_scorer(lpips_net: str = "vgg", decode_batch_size: int = 64) -> VideoRewardScorer:
    """The process's scorer for these options: every video reward callable built with the same
    options shares it, and with it one decode per batch."""
    key = (lpips_net, decode_batch_size)
    if key not in _SHARED:
        _SHARED[key] = VideoRewardScorer(lpips_net=lpips_net, decode_batch_size=decode_batch_size)
    return _SHARED[key]


def make_video_reward(
    name: str,
    weights: dict[str, float],
    scorer: VideoRewardScorer | None = None,
    lpips_net: str = "vgg",
    decode_batch_size: int = 64,
) -> Callable[..., list[float]]:
    """A TRL reward callable named ``name`` scoring ``sum_t weights[t] * reward_t``.

    Fails here, at start-up, when a term needs LPIPS and its weights are missing."""
    unknown = [t for t in weights if t not in TERMS]
    if unknown:
        raise ValueError(f"{name}: unknown term(s) {unknown}; known: {list(TERMS)}")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"{name}: term weights must be >= 0 (each term is already higher-is-better), got {weights}")
    scorer = scorer or shared_scorer(lpips_net, decode_batch_size)
    if "lpips" in weights:
        scorer.lpips_model()  # raises LPIPSWeightsNotFoundError with the fix in its message

    def reward(
        prompts=None, completions=None, completion_ids=None, target_frames=None, context_codes=None,
        video_processor=None, log_metric=None, **kwargs,
    ) -> list[float]:  # fmt: skip
        if completion_ids is None or target_frames is None:
            raise ValueError(f"{name} needs `completion_ids` and the dataset column {TARGET_COLUMN!r}")
        values = scorer.rewards(
            weights, completion_ids=completion_ids, target_frames=target_frames, prompts=prompts,
            context_codes=context_codes, video_processor=video_processor,
        )  # fmt: skip
        if log_metric is not None:
            log_metric(f"{name}/invalid_fraction", float((~scorer.last_batch.valid).float().mean()))
        return values

    reward.__name__ = reward.__qualname__ = name  # TRL logs each reward under its callable's name
    return reward
