"""Frames + actions <-> token sequences of the video world model (single-step and multi-step).

Notation: ``N`` tokens per predicted frame, ``D`` action dimensions, ``k`` context frames,
``a_t`` the action tokens of ``actions[t]`` (taken at frame ``t``, leading to frame ``t + 1``).

Single-step (per-frame tokenizer)::

    f_0 a_0  f_1 a_1 ... f_{k-1} a_{k-1}  BOS  f_k  EOS        labels: BOS..EOS, -100 elsewhere
    |------------------- prompt ------------------|-completion-|

Multi-step (compressive tokenizer: one context frame with its own codebook, ``T`` future frames)::

    c_0 a_0  f_1 a_1  f_2 ... a_{T-1}  f_T                     labels: future-frame tokens only
    |-prompt-|----------- completion -------|

The processor owns the action ranges (an :class:`ActionBinner`) and a reference to the frozen
visual tokenizer (a path, relative to the processor's directory when saved with the model), so a
saved world model directory is all one needs to run it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlvr_world.data.frames import frames_to_tensor
from rlvr_world.video.actions import ActionBinner
from rlvr_world.video.world_model.configuration_video_world_model import vocabulary_layout

SINGLE_STEP = "single_step"
MULTI_STEP = "multi_step"
MODES = (SINGLE_STEP, MULTI_STEP)
PROCESSOR_CONFIG_FILE = "video_processor_config.json"
TOKENIZER_SUBFOLDER = "visual_tokenizer"
IGNORE_INDEX = -100

# Kinds of sequence positions (see `token_kinds`).
VISUAL, CONTEXT, ACTION, BOS, EOS = 0, 1, 2, 3, 4


class VideoWorldModelProcessor:
    """Turns frames and actions into world-model token sequences, and generated tokens back into frames.

    Args:
        mode: ``"single_step"`` or ``"multi_step"``.
        num_context_frames: ``k`` (single-step); multi-step models have one context frame.
        num_future_frames: predicted frames per sequence (1 for single-step, ``T`` for multi-step).
        frame_token_shape: ``[h, w]`` token grid of a predicted frame.
        action_binner: a fitted :class:`ActionBinner` (its ``num_bins`` is the action vocabulary).
        num_visual_codes: codebook size of the predicted frames.
        num_context_codes: context codebook size (multi-step; 0 for single-step).
        context_token_shape: ``[h, w]`` token grid of the context frame (multi-step).
        image_size: ``[H, W]`` of the frames.
        tokenizer_name_or_path: directory of the visual tokenizer; a relative path is resolved
            against the directory the processor was loaded from.
        tokenizer: an already loaded visual tokenizer (skips loading from the path).
    """

    def __init__(
        self,
        mode: str,
        num_context_frames: int,
        num_future_frames: int,
        frame_token_shape: list[int] | tuple[int, int],
        action_binner: ActionBinner,
        num_visual_codes: int,
        num_context_codes: int = 0,
        context_token_shape: list[int] | tuple[int, int] | None = None,
        image_size: list[int] | tuple[int, int] | None = None,
        tokenizer_name_or_path: str | None = None,
        tokenizer: torch.nn.Module | None = None,
        base_directory: str | os.PathLike | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not action_binner.is_fitted:
            raise ValueError("the processor needs a fitted ActionBinner (the training set's action ranges)")
        if mode == SINGLE_STEP and (num_future_frames != 1 or num_context_frames < 1):
            raise ValueError("single-step sequences have num_future_frames=1 and num_context_frames >= 1")
        if mode == MULTI_STEP:
            if num_context_frames != 1 or num_future_frames < 1:
                raise ValueError("multi-step sequences have one context frame and num_future_frames >= 1")
            if context_token_shape is None or num_context_codes < 1:
                raise ValueError("multi-step sequences need context_token_shape and num_context_codes")
        self.mode = mode
        self.num_context_frames = int(num_context_frames)
        self.num_future_frames = int(num_future_frames)
        self.frame_token_shape = tuple(int(x) for x in frame_token_shape)
        self.context_token_shape = None if context_token_shape is None else tuple(int(x) for x in context_token_shape)
        self.image_size = None if image_size is None else tuple(int(x) for x in image_size)
        self.action_binner = action_binner
        self.num_visual_codes = int(num_visual_codes)
        self.num_context_codes = int(num_context_codes)
        self.num_action_bins = action_binner.num_bins
        self.tokenizer_name_or_path = tokenizer_name_or_path
        self.base_directory = None if base_directory is None else Path(base_directory)
        self._tokenizer = tokenizer

    # ------------------------------------------------------------------------------ vocabulary
    # The layout of VideoWorldModelConfig: visual, context, action bins, BOS, EOS, pad.
    @property
    def _layout(self) -> dict[str, int]:
        return vocabulary_layout(self.num_visual_codes, self.num_context_codes, self.num_action_bins)

    context_token_offset = property(lambda self: self._layout["context_token_offset"])
    action_token_offset = property(lambda self: self._layout["action_token_offset"])
    bos_token_id = property(lambda self: self._layout["bos_token_id"])
    eos_token_id = property(lambda self: self._layout["eos_token_id"])
    pad_token_id = property(lambda self: self._layout["pad_token_id"])
    vocab_size = property(lambda self: self._layout["vocab_size"])

    def model_config_kwargs(self) -> dict[str, int]:
        """The vocabulary fields of a matching `VideoWorldModelConfig`."""
        return {
            "num_visual_codes": self.num_visual_codes,
            "num_context_codes": self.num_context_codes,
            "num_action_bins": self.num_action_bins,
        }

    def frame_layout(self, max_positions: int) -> dict[str, Any]:
        """The frame layout fields of a config whose previous-frame (and action, place) inputs follow these sequences.

        Single-step: every context frame, then the target frame after BOS. Multi-step: every future frame
        that fits in `max_positions` (rollouts may run past the training length); the context block uses
        another codebook and grid, so the first future frame has no previous frame to see.
        """
        n, d = self.tokens_per_frame, self.action_dim
        if self.mode == SINGLE_STEP:
            starts = [i * (n + d) for i in range(self.num_context_frames)]
            starts.append(self.num_context_frames * (n + d) + 1)
            # a_{i-1} ends frame i-1's block; the target's action is a_{k-1}, before BOS
            actions = [-1] + [i * (n + d) - d for i in range(1, self.num_context_frames + 1)]
        else:
            starts = list(range(self.context_tokens + d, max_positions, n + d))
            actions = [start - d for start in starts]  # every future frame follows its action
        return {"tokens_per_frame": n, "frame_starts": starts, "frame_width": int(self.frame_token_shape[1]),
                "action_dim": d, "action_starts": actions}

    def check_model_config(self, config) -> None:
        """Raise if a model config's vocabulary layout differs from this processor's."""
        for name, value in self.model_config_kwargs().items():
            if getattr(config, name, None) != value:
                raise ValueError(f"model config {name}={getattr(config, name, None)} but the processor has {value}")

    # ------------------------------------------------------------------------------ lengths
    @property
    def action_dim(self) -> int:
        return self.action_binner.action_dim

    @property
    def tokens_per_frame(self) -> int:
        return self.frame_token_shape[0] * self.frame_token_shape[1]

    @property
    def context_tokens(self) -> int:
        """Tokens of the context block (multi-step: the context frame's codes; single-step: 0)."""
        if self.context_token_shape is None:
            return 0
        return self.context_token_shape[0] * self.context_token_shape[1]

    def completion_length_for(self, num_frames: int) -> int:
        n, d = self.tokens_per_frame, self.action_dim
        if self.mode == SINGLE_STEP:
            return n + 1
        return num_frames * n + (num_frames - 1) * d

    @property
    def prompt_length(self) -> int:
        if self.mode == SINGLE_STEP:
            return self.num_context_frames * (self.tokens_per_frame + self.action_dim) + 1
        return self.context_tokens + self.action_dim

    @property
    def completion_length(self) -> int:
        return self.completion_length_for(self.num_future_frames)

    @property
    def sequence_length(self) -> int:
        return self.prompt_length + self.completion_length

    def token_kinds(self, num_frames: int | None = None) -> torch.LongTensor:
        """Kind of every position of a full sequence (VISUAL, CONTEXT, ACTION, BOS, EOS)."""
        n, d = self.tokens_per_frame, self.action_dim
        parts = []
        if self.mode == SINGLE_STEP:
            for _ in range(self.num_context_frames):
                parts += [torch.full((n,), VISUAL), torch.full((d,), ACTION)]
            parts += [torch.tensor([BOS]), torch.full((n,), VISUAL), torch.tensor([EOS])]
        else:
            frames = self.num_future_frames if num_frames is None else num_frames
            parts += [torch.full((self.context_tokens,), CONTEXT), torch.full((d,), ACTION)]
            for t in range(frames):
                parts.append(torch.full((n,), VISUAL))
                if t < frames - 1:
                    parts.append(torch.full((d,), ACTION))
        return torch.cat(parts).long()

    def kind_ranges(self) -> dict[int, tuple[int, int]]:
        """Half-open token-id range of each position kind."""
        return {
            VISUAL: (0, self.num_visual_codes),
            CONTEXT: (self.context_token_offset, self.action_token_offset),
            ACTION: (self.action_token_offset, self.bos_token_id),
            BOS: (self.bos_token_id, self.bos_token_id + 1),
            EOS: (self.eos_token_id, self.eos_token_id + 1),
        }

    # ------------------------------------------------------------------------------ tokenizer
    @property
    def visual_tokenizer(self) -> torch.nn.Module:
        """The frozen visual tokenizer (loaded on first use, in eval mode)."""
        if self._tokenizer is None:
            if self.tokenizer_name_or_path is None:
                raise ValueError("this processor has no visual tokenizer (tokenizer_name_or_path is unset)")
            from transformers import AutoModel

            import rlvr_world  # noqa: F401  (registers the tokenizers with AutoModel)

            path = Path(self.tokenizer_name_or_path)
            if not path.is_absolute() and self.base_directory is not None and (self.base_directory / path).is_dir():
                path = self.base_directory / path
            if not path.is_dir():
                raise FileNotFoundError(f"visual tokenizer not found at {path}")
            self._tokenizer = AutoModel.from_pretrained(str(path)).eval().requires_grad_(False)
        return self._tokenizer

    def _tokenizer_device(self) -> torch.device:
        return next(self.visual_tokenizer.parameters()).device

    @torch.no_grad()
    def visual_code_latents(self) -> torch.Tensor:
        """``[num_visual_codes, D]``: the latent the tokenizer's quantiser gives each visual code (the
        predicted frames' codebook; what the decoder reads), for decoding rules in latent space."""
        tokenizer = self.visual_tokenizer
        quantizer = tokenizer.quantizer if self.mode == SINGLE_STEP else tokenizer.future_quantizer
        latents = quantizer.indices_to_codes(torch.arange(quantizer.codebook_size, device=self._tokenizer_device()))
        if latents.shape[0] != self.num_visual_codes:
            raise ValueError(f"the tokenizer has {latents.shape[0]} codes, the processor {self.num_visual_codes}")
        return latents.float()

    # ------------------------------------------------------------------------------ actions
    def action_tokens(self, actions: np.ndarray | torch.Tensor) -> torch.LongTensor:
        """Continuous actions ``[..., D]`` -> action token ids ``[..., D]``."""
        actions = torch.as_tensor(np.asarray(actions) if not isinstance(actions, torch.Tensor) else actions)
        return self.action_binner.bin(actions.float()) + self.action_token_offset

    # ------------------------------------------------------------------------------ frames
    def _pixels(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, T, H, W, 3]`` or float ``[B, T, 3, H, W]`` in [0, 1] -> float ``[B, T, 3, H, W]``."""
        if isinstance(frames, np.ndarray) or frames.dtype == torch.uint8:
            frames = frames_to_tensor(frames)
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"expected frames [B, T, H, W, 3] uint8 or [B, T, 3, H, W] float, got {tuple(frames.shape)}")
        if self.image_size is not None and tuple(frames.shape[-2:]) != self.image_size:
            raise ValueError(f"frames are {tuple(frames.shape[-2:])}, the processor expects {self.image_size}")
        return frames.float()

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray | torch.Tensor):
        """Frames -> tokenizer codes. Single-step: ``[B, T, h, w]``; multi-step: the first frame is the
        context: ``(context_codes [B, 1, hc, wc], future_codes [B, T-1, h, w])``."""
        pixels = self._pixels(frames).to(self._tokenizer_device())
        if self.mode == SINGLE_STEP:
            return self.visual_tokenizer.encode(pixels)
        context, future = self.visual_tokenizer.encode(pixels)
        return context, future

    @torch.no_grad()
    def decode_frames(self, frame_codes: torch.LongTensor, context_codes: torch.LongTensor | None = None) -> torch.Tensor:
        """Codes ``[B, T, h, w]`` -> frames ``[B, T, 3, H, W]`` in [0, 1]. Multi-step needs the context codes."""
        tokenizer = self.visual_tokenizer
        frame_codes = frame_codes.to(self._tokenizer_device())
        if self.mode == SINGLE_STEP:
            return tokenizer.decode(frame_codes)
        if context_codes is None:
            raise ValueError("multi-step frames decode against their context: pass context_codes")
        context = tokenizer.context_from_codes(context_codes.to(frame_codes.device))
        return tokenizer.decode_future(frame_codes, context)

    # ------------------------------------------------------------------------------ sequences
    def _check_codes(self, codes: torch.Tensor, shape: tuple[int, int], size: int, name: str) -> None:
        if tuple(codes.shape[-2:]) != shape:
            raise ValueError(f"{name} codes have a {tuple(codes.shape[-2:])} grid, the processor expects {shape}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= size):
            raise ValueError(f"{name} codes must lie in [0, {size}), got [{int(codes.min())}, {int(codes.max())}]")

    def _check_action_ids(self, action_ids: torch.Tensor, needed: int) -> torch.Tensor:
        if action_ids.ndim != 3 or action_ids.shape[-1] != self.action_dim or action_ids.shape[1] < needed:
            raise ValueError(
                f"expected action ids [B, >= {needed}, {self.action_dim}], got {tuple(action_ids.shape)}"
            )
        lo, hi = self.kind_ranges()[ACTION]
        if action_ids.numel() and (action_ids.min() < lo or action_ids.max() >= hi):
            raise ValueError(f"action ids must lie in [{lo}, {hi}) (use processor.action_tokens(actions))")
        return action_ids[:, :needed]

    def build_sequences(
        self,
        frame_codes: torch.LongTensor,
        action_ids: torch.LongTensor,
        context_codes: torch.LongTensor | None = None,
    ) -> dict[str, torch.LongTensor]:
        """Tokenizer codes + action ids -> ``{"input_ids", "labels"}``, each ``[B, L]``.

        Single-step: ``frame_codes`` ``[B, k+1, h, w]`` (the last one is the target), ``action_ids``
        ``[B, >= k, D]``. Multi-step: ``context_codes`` ``[B, 1, hc, wc]``, ``frame_codes`` ``[B, T, h, w]``
        (the future frames), ``action_ids`` ``[B, >= T, D]`` (``a_0 .. a_{T-1}``).
        """
        frame_codes, action_ids = frame_codes.long(), action_ids.long()
        batch = frame_codes.shape[0]
        self._check_codes(frame_codes, self.frame_token_shape, self.num_visual_codes, "frame")
        frames = frame_codes.flatten(2)  # [B, T, N]

        def column(token_id: int) -> torch.Tensor:
            return torch.full((batch, 1), token_id, dtype=torch.long, device=frames.device)

        if self.mode == SINGLE_STEP:
            k = self.num_context_frames
            if frames.shape[1] != k + 1:
                raise ValueError(f"single-step sequences need {k + 1} frames, got {frames.shape[1]}")
            actions = self._check_action_ids(action_ids, k).to(frames.device)
            prompt = [torch.cat([frames[:, i], actions[:, i]], dim=1) for i in range(k)]
            prompt = torch.cat([*prompt, column(self.bos_token_id)], dim=1)
            completion = torch.cat([frames[:, k], column(self.eos_token_id)], dim=1)
            input_ids = torch.cat([prompt, completion], dim=1)
            labels = input_ids.clone()
            labels[:, : prompt.shape[1] - 1] = IGNORE_INDEX  # loss on BOS..EOS
            return {"input_ids": input_ids, "labels": labels}

        if context_codes is None:
            raise ValueError("multi-step sequences need context_codes")
        self._check_codes(context_codes, self.context_token_shape, self.num_context_codes, "context")
        num_frames = frames.shape[1]
        actions = self._check_action_ids(action_ids, num_frames).to(frames.device)
        context = context_codes.long().flatten(1).to(frames.device) + self.context_token_offset
        parts, is_frame = [context, actions[:, 0]], [False, False]
        for t in range(num_frames):
            parts.append(frames[:, t])
            is_frame.append(True)
            if t < num_frames - 1:
                parts.append(actions[:, t + 1])
                is_frame.append(False)
        input_ids = torch.cat(parts, dim=1)
        labels = torch.cat([p if f else torch.full_like(p, IGNORE_INDEX) for p, f in zip(parts, is_frame)], dim=1)
        return {"input_ids": input_ids, "labels": labels}

    def __call__(self, frames: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """Frames + actions -> training sequences ``{"input_ids", "labels", "attention_mask"}``.

        Single-step: ``k + 1`` frames and ``>= k`` actions; multi-step: ``T + 1`` frames (context
        first) and ``>= T`` actions. Extra trailing actions are ignored.
        """
        action_ids = self.action_tokens(actions)
        if action_ids.ndim == 2:
            action_ids = action_ids[None]
        if self.mode == SINGLE_STEP:
            batch = self.build_sequences(self.encode_frames(frames).cpu(), action_ids)
        else:
            context, future = self.encode_frames(frames)
            batch = self.build_sequences(future.cpu(), action_ids, context_codes=context.cpu())
        batch["attention_mask"] = torch.ones_like(batch["input_ids"])
        return batch

    def build_prompt(self, frames: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> torch.LongTensor:
        """The generation prompt ``[B, prompt_length]``. Single-step: the ``k`` context frames and their
        actions; multi-step: the context frame and ``a_0`` (``frames`` [B, 1, ...], ``actions`` [B, >= 1, D])."""
        action_ids = self.action_tokens(actions)
        if self.mode == SINGLE_STEP:
            codes = self.encode_frames(frames).cpu()
            k = self.num_context_frames
            if codes.shape[1] != k:
                raise ValueError(f"a single-step prompt has {k} context frames, got {codes.shape[1]}")
            # Reuse the sequence builder with a placeholder target, then cut the prompt off.
            dummy = torch.zeros_like(codes[:, :1])
            return self.build_sequences(torch.cat([codes, dummy], 1), action_ids)["input_ids"][:, : self.prompt_length]
        pixels = self._pixels(frames).to(self._tokenizer_device())
        context = self.visual_tokenizer.encode_context(pixels[:, :1]).codes.cpu()
        return self.prompt_from_codes(context, action_ids[:, :1])

    def prompt_from_codes(self, context_codes: torch.LongTensor, action_ids: torch.LongTensor) -> torch.LongTensor:
        """Multi-step prompt from the context codes ``[B, 1, hc, wc]`` and ``a_0`` ids ``[B, >= 1, D]``."""
        self._check_codes(context_codes, self.context_token_shape, self.num_context_codes, "context")
        actions = self._check_action_ids(action_ids.long(), 1)
        return torch.cat([context_codes.long().flatten(1) + self.context_token_offset, actions[:, 0]], dim=1)

    def context_codes_from_prompt(self, prompt_ids: torch.LongTensor) -> torch.LongTensor:
        """Multi-step: the context codes ``[B, 1, hc, wc]`` (tokenizer space) at the start of a prompt."""
        if self.mode != MULTI_STEP:
            raise ValueError("only multi-step prompts carry context codes")
        ids = prompt_ids[:, : self.context_tokens] - self.context_token_offset
        return ids.reshape(ids.shape[0], 1, *self.context_token_shape)

    def completion_to_codes(self, completion_ids: torch.LongTensor) -> tuple[torch.LongTensor, torch.BoolTensor]:
        """Generated completion ``[B, L]`` -> ``(frame_codes [B, T, h, w], valid [B])``.

        Action tokens and EOS are dropped. Never raises on model output: a row that is too short
        or holds a token outside the visual codes is ``valid=False`` and its bad codes become 0.
        """
        n, d = self.tokens_per_frame, self.action_dim
        batch, length = completion_ids.shape
        if self.mode == SINGLE_STEP:
            num_frames, starts = 1, [0]
        else:
            num_frames = max(1, (length + d) // (n + d))
            starts = [t * (n + d) for t in range(num_frames)]
        codes = torch.zeros(batch, num_frames, n, dtype=torch.long, device=completion_ids.device)
        valid = torch.ones(batch, dtype=torch.bool, device=completion_ids.device)
        for t, start in enumerate(starts):
            chunk = completion_ids[:, start : start + n]
            ok = (chunk >= 0) & (chunk < self.num_visual_codes)
            if chunk.shape[1] < n:
                valid[:] = False
            valid &= ok.all(dim=1)
            codes[:, t, : chunk.shape[1]] = torch.where(ok, chunk, torch.zeros_like(chunk))
        return codes.reshape(batch, num_frames, *self.frame_token_shape), valid

    def split_sequence(self, input_ids: torch.LongTensor) -> dict[str, torch.LongTensor | None]:
        """Inverse of :meth:`build_sequences`: ``{"frame_codes", "action_ids", "context_codes"}``."""
        kinds = self.token_kinds(None if self.mode == SINGLE_STEP else self._frames_in(input_ids.shape[1]))
        if input_ids.shape[1] != kinds.numel():
            raise ValueError(f"sequence of length {input_ids.shape[1]} does not match the layout ({kinds.numel()})")
        batch = input_ids.shape[0]
        frames = input_ids[:, kinds == VISUAL].reshape(batch, -1, *self.frame_token_shape)
        actions = input_ids[:, kinds == ACTION].reshape(batch, -1, self.action_dim)
        context = None
        if self.mode == MULTI_STEP:
            context = self.context_codes_from_prompt(input_ids)
        return {"frame_codes": frames, "action_ids": actions, "context_codes": context}

    def _frames_in(self, sequence_length: int) -> int:
        # L = C + D + T*N + (T-1)*D = C + T*(N + D)
        return (sequence_length - self.context_tokens) // (self.tokens_per_frame + self.action_dim)

    # ------------------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "processor_class": type(self).__name__,
            "mode": self.mode,
            "num_context_frames": self.num_context_frames,
            "num_future_frames": self.num_future_frames,
            "frame_token_shape": list(self.frame_token_shape),
            "context_token_shape": None if self.context_token_shape is None else list(self.context_token_shape),
            "image_size": None if self.image_size is None else list(self.image_size),
            "num_visual_codes": self.num_visual_codes,
            "num_context_codes": self.num_context_codes,
            "action_binner": self.action_binner.to_dict(),
            "tokenizer_name_or_path": self.tokenizer_name_or_path,
            "token_ids": self._layout,  # derived, written for readers of the JSON (checked on load)
        }

    @classmethod
    def from_dict(cls, config: dict[str, Any], **kwargs) -> VideoWorldModelProcessor:
        config = dict(config)
        config.pop("processor_class", None)
        token_ids = config.pop("token_ids", None)
        config["action_binner"] = ActionBinner.from_dict(config["action_binner"])
        processor = cls(**config, **kwargs)
        if token_ids is not None:
            for name, value in token_ids.items():
                if getattr(processor, name) != value:
                    raise ValueError(f"{PROCESSOR_CONFIG_FILE}: {name}={value} disagrees with the layout "
                                     f"({getattr(processor, name)})")
        return processor

    def save_pretrained(self, save_directory: str | os.PathLike, save_tokenizer: bool = True) -> Path:
        """Write ``video_processor_config.json`` (and, by default, a copy of the visual tokenizer in
        ``visual_tokenizer/``, which the saved config then points to)."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = self.to_dict()
        if save_tokenizer:
            self.visual_tokenizer.save_pretrained(directory / TOKENIZER_SUBFOLDER)
            config["tokenizer_name_or_path"] = TOKENIZER_SUBFOLDER
        elif self.tokenizer_name_or_path is not None:
            config["tokenizer_name_or_path"] = str(self._resolved_tokenizer_path())
        path = directory / PROCESSOR_CONFIG_FILE
        path.write_text(json.dumps(config, indent=2) + "\n")
        return path

    def _resolved_tokenizer_path(self) -> Path:
        path = Path(self.tokenizer_name_or_path)
        if not path.is_absolute() and self.base_directory is not None and (self.base_directory / path).is_dir():
            path = self.base_directory / path
        return path.resolve()

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, tokenizer: torch.nn.Module | None = None) -> VideoWorldModelProcessor:
        """Load from a world model (or processor) directory; the tokenizer loads on first use."""
        path = Path(directory) / PROCESSOR_CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {PROCESSOR_CONFIG_FILE} in {directory}")
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        return cls.from_dict(config, tokenizer=tokenizer, base_directory=Path(directory))

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: torch.nn.Module,
        tokenizer_name_or_path: str | None,
        mode: str,
        action_binner: ActionBinner,
        image_size: tuple[int, int],
        num_context_frames: int = 4,
        num_future_frames: int = 1,
    ) -> VideoWorldModelProcessor:
        """A processor whose code grids and codebook sizes are read off a visual tokenizer."""
        config = tokenizer.config
        height, width = image_size
        if mode == SINGLE_STEP:
            if not hasattr(config, "codebook_size"):
                raise ValueError("single-step world models need the per-frame tokenizer (vqgan_fsq)")
            f = config.downsample_factor
            return cls(mode, num_context_frames, 1, (height // f, width // f), action_binner,
                       num_visual_codes=config.codebook_size, image_size=image_size,
                       tokenizer_name_or_path=tokenizer_name_or_path, tokenizer=tokenizer)
        if not hasattr(config, "future_codebook_size"):
            raise ValueError("multi-step world models need the compressive tokenizer (compressive_vqgan_fsq)")
        f, ff = config.downsample_factor, config.future_downsample_factor
        return cls(mode, 1, num_future_frames, (height // ff, width // ff), action_binner,
                   num_visual_codes=config.future_codebook_size, num_context_codes=config.context_codebook_size,
                   context_token_shape=(height // f, width // f), image_size=image_size,
                   tokenizer_name_or_path=tokenizer_name_or_path, tokenizer=tokenizer)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(mode={self.mode!r}, k={self.num_context_frames}, T={self.num_future_frames}, "
                f"frame_tokens={self.frame_token_shape}, context_tokens={self.context_token_shape}, "
                f"action_dim={self.action_dim}, prompt={self.prompt_length}, completion={self.completion_length})")


__all__ = ["MULTI_STEP", "PROCESSOR_CONFIG_FILE", "SINGLE_STEP", "VideoWorldModelProcessor"]
