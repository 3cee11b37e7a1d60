"""The autoregressive video world model: transformers' Llama decoder over visual and action tokens.

Nothing here re-implements attention: the decoder, its KV cache and `generate` are Llama's. The
subclasses bind the [`VideoWorldModelConfig`] (whose vocabulary layout fixes `vocab_size` and the
special tokens) so that the Auto classes load saved world models without remote code, and add one
optional input: the previous frame's token at the place being predicted (and, with
`previous_frame_radius`, the tokens around that place).

Why that input: most of a next frame is the previous frame at the same place (a teacher-forced tiny
model without it got 96% of the unchanged tokens right, so it lost to copying the last frame). With
RoPE alone, copying means attending exactly one frame back (259 positions for a 16x16 single-step
frame); with the token handed to the input, copying is the identity and the decoder's capacity goes
to what changes. The token is found from `position_ids`, so left padding and the KV cache work as for
RoPE; during `generate`, `prepare_inputs_for_generation` looks it up in the full sequence.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import GenerationMixin, LlamaModel, LlamaPreTrainedModel
from transformers.models.llama.modeling_llama import LlamaForCausalLM

from .configuration_video_world_model import VideoWorldModelConfig

NO_TOKEN = -1


def previous_frame_tokens(
    input_ids: torch.LongTensor, position_ids: torch.LongTensor, frame_starts: list[int], tokens_per_frame: int,
    frame_width: int = 0, radius: int = 0,
) -> torch.LongTensor:
    """For each of the last `position_ids.shape[-1]` positions of `input_ids`, the tokens one frame before
    the token it predicts, at the same place and (with `radius` r > 0) at the places up to r rows and
    columns around it: shape `[batch, queried, (2r + 1)^2]`, row-major offsets, the same place in the middle.

    `frame_starts` are the positions where frames of `tokens_per_frame` tokens begin, `frame_width` tokens
    to a row. Where the next token is no frame token, or its frame is the first, or a neighbour falls off
    the grid, the entry is `NO_TOKEN`. During generation only the new positions are asked for, so each
    step costs the same however long the sequence has grown.
    """
    length, queried = input_ids.shape[1], position_ids.shape[-1]
    starts = torch.tensor(frame_starts, dtype=position_ids.dtype, device=position_ids.device)
    position_ids = position_ids.expand(input_ids.shape[0], -1)
    offset = (position_ids + 1).unsqueeze(-1) - starts  # the predicted token's offset from every frame start
    inside = (offset >= 0) & (offset < tokens_per_frame)
    frame = inside.long().argmax(-1)  # frames do not overlap: at most one start matches
    place = offset.gather(-1, frame.unsqueeze(-1)).squeeze(-1)
    previous_start = starts[(frame - 1).clamp(min=0)]
    width = frame_width or tokens_per_frame
    height = tokens_per_frame // width
    shifts = torch.arange(-radius, radius + 1, device=input_ids.device)
    dy, dx = (t.reshape(-1) for t in torch.meshgrid(shifts, shifts, indexing="ij"))
    row, col = (place // width).unsqueeze(-1) + dy, (place % width).unsqueeze(-1) + dx
    on_grid = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    # positions -> indices of input_ids (they differ by the left padding)
    padding = torch.arange(length - queried, length, device=input_ids.device) - position_ids
    source = (previous_start + padding).unsqueeze(-1) + row * width + col
    found = (inside.any(-1) & (frame >= 1)).unsqueeze(-1) & on_grid & (source >= 0) & (source < length)
    tokens = input_ids.gather(1, source.clamp(0, length - 1).flatten(1)).view_as(source)
    return torch.where(found, tokens, torch.full_like(tokens, NO_TOKEN))


class VideoWorldModelPreTrainedModel(LlamaPreTrainedModel):
    config_class = VideoWorldModelConfig
    config: VideoWorldModelConfig


class VideoWorldModelModel(VideoWorldModelPreTrainedModel, LlamaModel):
    """The bare decoder (`AutoModel`); returns `.last_hidden_state`.

    With `config.tokens_per_frame`, each input embedding also gets a learned projection of the
    embedding of [`previous_frame_tokens`] (nothing where there is none).
    """

    def __init__(self, config: VideoWorldModelConfig):
        LlamaModel.__init__(self, config)
        self.previous_frame_projection = None
        if config.tokens_per_frame:
            places = (2 * config.previous_frame_radius + 1) ** 2
            self.previous_frame_projection = nn.Linear(places * config.hidden_size, config.hidden_size, bias=False)
            nn.init.normal_(self.previous_frame_projection.weight, std=config.initializer_range)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                previous_frame_ids: torch.LongTensor | None = None, **kwargs):
        if self.previous_frame_projection is not None:
            if input_ids is None:
                raise ValueError("a world model with a previous-frame input needs input_ids, not inputs_embeds")
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            past = cache.get_seq_length() if cache is not None else 0
            if position_ids is None:  # Llama's own default: positions continue after the cache
                position_ids = (torch.arange(input_ids.shape[1], device=input_ids.device) + past).unsqueeze(0)
            if previous_frame_ids is None:
                if past:
                    raise ValueError("after a KV cache, pass previous_frame_ids (generate() does it): the "
                                     "previous frame is not in this call's input_ids")
                previous_frame_ids = previous_frame_tokens(input_ids, position_ids, **self.config.previous_frame_layout)
            found = (previous_frame_ids != NO_TOKEN).unsqueeze(-1)
            previous = (self.embed_tokens(previous_frame_ids.clamp(min=0)) * found).flatten(-2)
            inputs_embeds = self.embed_tokens(input_ids) + self.previous_frame_projection(previous)
            input_ids = None
        return LlamaModel.forward(self, input_ids=input_ids, attention_mask=attention_mask,
                                  position_ids=position_ids, inputs_embeds=inputs_embeds, **kwargs)


class VideoWorldModelForCausalLM(VideoWorldModelPreTrainedModel, LlamaForCausalLM, GenerationMixin):
    """Next-token prediction over the world model's vocabulary (`AutoModelForCausalLM`).

    `base_model_prefix` is `"model"` (a [`VideoWorldModelModel`]) and `lm_head` an `nn.Linear`,
    which is what TRL's trainers expect of a causal LM.
    """

    def __init__(self, config: VideoWorldModelConfig):
        VideoWorldModelPreTrainedModel.__init__(self, config)
        self.model = VideoWorldModelModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def prepare_inputs_for_generation(self, input_ids, **kwargs):
        inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        if self.config.tokens_per_frame and inputs.get("input_ids") is not None:
            # generate() keeps the whole sequence: look up the previous frame there, for this step's positions only
            positions = inputs.get("position_ids")
            if positions is None:
                length = input_ids.shape[1]
                positions = torch.arange(length - inputs["input_ids"].shape[1], length, device=input_ids.device)[None]
            inputs["previous_frame_ids"] = previous_frame_tokens(input_ids, positions, **self.config.previous_frame_layout)
        return inputs


__all__ = ["VideoWorldModelForCausalLM", "VideoWorldModelModel", "VideoWorldModelPreTrainedModel", "previous_frame_tokens"]
