"""Configuration of the autoregressive video world model (a LLaMA decoder over visual and action tokens)."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import LlamaConfig


def vocabulary_layout(num_visual_codes: int, num_context_codes: int, num_action_bins: int) -> dict[str, int]:
    """Offsets and special ids of the layout below (shared with the processor)."""
    action = num_visual_codes + num_context_codes
    bos = action + num_action_bins
    return {"context_token_offset": num_visual_codes, "action_token_offset": action,
            "bos_token_id": bos, "eos_token_id": bos + 1, "pad_token_id": bos + 2, "vocab_size": bos + 3}


@strict
class VideoWorldModelConfig(LlamaConfig):
    r"""Configuration for [`VideoWorldModelForCausalLM`]: Llama's fields plus the vocabulary layout.

    The vocabulary is laid out in contiguous blocks, in this order:

    - visual codes `[0, num_visual_codes)`: the codebook of the predicted frames (per-frame
      tokenizer codes for single-step models, the compressive tokenizer's future codebook for
      multi-step ones);
    - context codes `[num_visual_codes, + num_context_codes)`: the compressive tokenizer's context
      codebook (0 for single-step models);
    - action bins `[.., + num_action_bins)`: one token per action dimension, shared by all dimensions
      (the position in the sequence says which dimension it is);
    - BOS, EOS, pad.

    `vocab_size` and the special token ids follow from the layout; passing a `vocab_size` that
    disagrees with it is an error.

    Args:
        num_visual_codes (`int`, defaults to 4375): size of the predicted frames' codebook.
        num_context_codes (`int`, defaults to 0): size of the context codebook (compressive tokenizer).
        num_action_bins (`int`, defaults to 256): bins per action dimension.
        tokens_per_frame (`int`, defaults to 0): visual tokens per frame; with `frame_starts`, turns on the
            previous-frame input (each position also sees the previous frame's token at the place it
            predicts; 0 turns it off).
        frame_starts (`list[int]`, defaults to `[]`): sequence positions where a frame's
            `tokens_per_frame` visual tokens begin (the processor's `frame_layout` fills these fields).
        frame_width (`int`, defaults to 0): tokens in a row of a frame's grid (0: one row).
        previous_frame_radius (`int`, defaults to 0): with r > 0 the previous-frame input also holds the
            previous frame's tokens up to r rows and columns around the predicted place, where things move from.
        action_dim (`int`, defaults to 0): action tokens per step (the processor's `frame_layout` fills it).
        action_starts (`list[int]`, defaults to `[]`): for each of `frame_starts`, the position where the
            action tokens leading to that frame begin (-1 for a frame no action leads to).
        action_input (`bool`, defaults to `False`): each position predicting a frame token also sees the
            action that leads to that frame (a projection of its action tokens' embeddings), so every
            place can condition on it without finding the action tokens by attention.
        place_input (`bool`, defaults to `False`): each such position also gets a learned embedding of
            the place it predicts (RoPE gives only relative positions; where the agent is headed is absolute).
        sinusoidal_init (`bool`, defaults to `False`): a new model's action-bin embeddings start as sinusoidal
            features of the bin's value, and its place embeddings as those of the row and column, so that
            neighbouring bins and places start close (learned from random vectors, each of 256 bins must be
            learned on its own before actions mean distances).
        Other arguments: see [`transformers.LlamaConfig`]; the defaults here are the paper's
        138M model (12 layers, hidden 768, 12 heads, FFN 3072).
    """

    model_type = "video_world_model"
    # TRL 1.16 loads models (the policy, and the reference when beta > 0) through `config.auto_map` for any
    # architecture outside transformers; an empty map (not None) sends it to our registered Auto class.
    auto_map = {}

    num_visual_codes: int = 4375
    num_context_codes: int = 0
    num_action_bins: int = 256
    tokens_per_frame: int = 0
    frame_starts: list[int] | None = None
    frame_width: int = 0
    previous_frame_radius: int = 0
    action_dim: int = 0
    action_starts: list[int] | None = None
    action_input: bool = False
    place_input: bool = False
    sinusoidal_init: bool = False

    vocab_size: int | None = None
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 4096
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs):
        for name in ("num_visual_codes", "num_action_bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.tokens_per_frame < 0:
            raise ValueError(f"tokens_per_frame must be >= 0, got {self.tokens_per_frame}")
        self.frame_starts = sorted(int(s) for s in (self.frame_starts or []))
        if self.tokens_per_frame and not self.frame_starts:
            raise ValueError("tokens_per_frame needs frame_starts (the positions where frames begin)")
        if any(b - a < self.tokens_per_frame for a, b in zip(self.frame_starts, self.frame_starts[1:])):
            raise ValueError(f"frame_starts {self.frame_starts} overlap: frames of {self.tokens_per_frame} tokens")
        if self.frame_width < 0 or self.previous_frame_radius < 0:
            raise ValueError("frame_width and previous_frame_radius must be >= 0")
        if self.frame_width and self.tokens_per_frame % self.frame_width:
            raise ValueError(f"frame_width {self.frame_width} does not divide tokens_per_frame {self.tokens_per_frame}")
        if self.previous_frame_radius and not (self.tokens_per_frame and self.frame_width):
            raise ValueError("previous_frame_radius needs the frame layout (tokens_per_frame, frame_starts, frame_width)")
        self.action_starts = [int(s) for s in (self.action_starts or [])]
        if self.action_input and not (self.tokens_per_frame and self.action_dim > 0
                                      and len(self.action_starts) == len(self.frame_starts)):
            raise ValueError("action_input needs the frame layout with action_dim and one action start per frame start")
        if self.place_input and not self.tokens_per_frame:
            raise ValueError("place_input needs the frame layout (tokens_per_frame, frame_starts)")
        if self.num_context_codes < 0:
            raise ValueError(f"num_context_codes must be >= 0, got {self.num_context_codes}")
        layout = vocabulary_layout(self.num_visual_codes, self.num_context_codes, self.num_action_bins)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id", "vocab_size"):
            value = layout[name]
            given = getattr(self, name)
            if given is not None and given != value:
                raise ValueError(f"{name}={given} disagrees with the vocabulary layout, which gives {value}")
            setattr(self, name, value)
        super().__post_init__(**kwargs)

    # -------------------------------------------------------------------------------- layout
    @property
    def previous_frame_layout(self) -> dict:
        """The keyword arguments of `previous_frame_tokens` for this model."""
        return {"frame_starts": self.frame_starts, "tokens_per_frame": self.tokens_per_frame,
                "frame_width": self.frame_width, "radius": self.previous_frame_radius}

    @property
    def action_layout(self) -> dict:
        """The keyword arguments of `frame_action_tokens` for this model."""
        return {"frame_starts": self.frame_starts, "tokens_per_frame": self.tokens_per_frame,
                "action_starts": self.action_starts, "action_dim": self.action_dim}

    @property
    def visual_token_offset(self) -> int:
        return 0

    @property
    def context_token_offset(self) -> int:
        return self.num_visual_codes

    @property
    def action_token_offset(self) -> int:
        return self.num_visual_codes + self.num_context_codes

    @property
    def visual_range(self) -> tuple[int, int]:
        """Half-open id range of the visual codes."""
        return (0, self.num_visual_codes)

    @property
    def context_range(self) -> tuple[int, int]:
        return (self.context_token_offset, self.context_token_offset + self.num_context_codes)

    @property
    def action_range(self) -> tuple[int, int]:
        return (self.action_token_offset, self.action_token_offset + self.num_action_bins)


__all__ = ["VideoWorldModelConfig", "vocabulary_layout"]
