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
# Shortest periods of the sinusoidal start (`sinusoidal_init`): 8 action bins, 4 places of a row or column.
ACTION_PERIOD, PLACE_PERIOD = 8.0, 4.0


def _predicted_places(position_ids: torch.LongTensor, frame_starts: list[int], tokens_per_frame: int):
    """For each position, the frame of the token it predicts and that token's place in the frame.

    Returns `(frame, place, inside)`, each `[batch, queried]`; `inside` is False where the next token
    is no frame token (then `frame` and `place` mean nothing).
    """
    starts = torch.tensor(frame_starts, dtype=position_ids.dtype, device=position_ids.device)
    offset = (position_ids + 1).unsqueeze(-1) - starts  # the predicted token's offset from every frame start
    within = (offset >= 0) & (offset < tokens_per_frame)
    frame = within.long().argmax(-1)  # frames do not overlap: at most one start matches
    place = offset.gather(-1, frame.unsqueeze(-1)).squeeze(-1)
    return frame, place, within.any(-1)


def _gather(input_ids: torch.LongTensor, position_ids: torch.LongTensor, source_positions: torch.LongTensor,
            found: torch.BoolTensor) -> torch.LongTensor:
    """`input_ids` at sequence positions `source_positions` (`[batch, queried, m]`), `NO_TOKEN` where not `found`."""
    length, queried = input_ids.shape[1], position_ids.shape[-1]
    # positions -> indices of input_ids (they differ by the left padding)
    padding = torch.arange(length - queried, length, device=input_ids.device) - position_ids
    source = source_positions + padding.unsqueeze(-1)
    found = found & (source >= 0) & (source < length)
    tokens = input_ids.gather(1, source.clamp(0, length - 1).flatten(1)).view_as(source)
    return torch.where(found, tokens, torch.full_like(tokens, NO_TOKEN))


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
    position_ids = position_ids.expand(input_ids.shape[0], -1)
    frame, place, inside = _predicted_places(position_ids, frame_starts, tokens_per_frame)
    starts = torch.tensor(frame_starts, dtype=position_ids.dtype, device=position_ids.device)
    previous_start = starts[(frame - 1).clamp(min=0)]
    width = frame_width or tokens_per_frame
    height = tokens_per_frame // width
    shifts = torch.arange(-radius, radius + 1, device=input_ids.device)
    dy, dx = (t.reshape(-1) for t in torch.meshgrid(shifts, shifts, indexing="ij"))
    row, col = (place // width).unsqueeze(-1) + dy, (place % width).unsqueeze(-1) + dx
    on_grid = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    found = (inside & (frame >= 1)).unsqueeze(-1) & on_grid
    return _gather(input_ids, position_ids, previous_start.unsqueeze(-1) + row * width + col, found)


def frame_action_tokens(
    input_ids: torch.LongTensor, position_ids: torch.LongTensor, frame_starts: list[int], tokens_per_frame: int,
    action_starts: list[int], action_dim: int,
) -> torch.LongTensor:
    """For each of the last `position_ids.shape[-1]` positions, the `action_dim` action tokens that lead to
    the frame of the token it predicts (they begin at `action_starts[i]` for the frame at `frame_starts[i]`,
    -1 where no action leads to it): `[batch, queried, action_dim]`, `NO_TOKEN` where there is none."""
    position_ids = position_ids.expand(input_ids.shape[0], -1)
    frame, _, inside = _predicted_places(position_ids, frame_starts, tokens_per_frame)
    starts = torch.tensor(action_starts, dtype=position_ids.dtype, device=position_ids.device)[frame]
    found = (inside & (starts >= 0)).unsqueeze(-1).expand(-1, -1, action_dim)
    return _gather(input_ids, position_ids, starts.unsqueeze(-1) + torch.arange(action_dim, device=input_ids.device), found)


def predicted_places(position_ids: torch.LongTensor, frame_starts: list[int], tokens_per_frame: int) -> torch.LongTensor:
    """The place in its frame of the token each position predicts (`[batch, queried]`), `NO_TOKEN` where
    the next token is no frame token. Needs no tokens, so it works after a KV cache as it is."""
    _, place, inside = _predicted_places(position_ids, frame_starts, tokens_per_frame)
    return torch.where(inside, place, torch.full_like(place, NO_TOKEN))


def sinusoidal_features(count: int, dim: int, shortest_period: float) -> torch.Tensor:
    """`[count, dim]` sines and cosines of the values 0..count-1 at `dim // 2` log-spaced periods from twice
    the range (monotone) down to `shortest_period` values, so that nearby values get similar features
    (256 bins at 8: cosine 0.96 one bin apart, 0.43 eight apart); unit variance per feature."""
    fraction = torch.linspace(0, 1, dim // 2, dtype=torch.float64)
    periods = 2 * count * (shortest_period / (2 * count)) ** fraction
    frequencies = 2 * torch.pi / periods
    angles = torch.arange(count, dtype=torch.float64)[:, None] * frequencies[None]
    features = torch.cat([angles.sin(), angles.cos()], -1) * 2**0.5
    return torch.nn.functional.pad(features, (0, dim - features.shape[1])).float()


class VideoWorldModelPreTrainedModel(LlamaPreTrainedModel):
    config_class = VideoWorldModelConfig
    config: VideoWorldModelConfig

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        weight = getattr(module, "weight", None)
        if not self.config.sinusoidal_init or weight is None or getattr(weight, "_is_hf_initialized", False):
            return  # loaded weights carry the flag and are kept
        base = getattr(self, self.base_model_prefix, self)
        std, hidden = self.config.initializer_range, self.config.hidden_size
        if module is getattr(base, "embed_tokens", None):
            low, high = self.config.action_range
            module.weight[low:high] = std * sinusoidal_features(high - low, hidden, ACTION_PERIOD).to(module.weight)
        elif module is getattr(base, "place_embedding", None):
            width = self.config.frame_width or self.config.tokens_per_frame
            height = self.config.tokens_per_frame // width
            row = sinusoidal_features(height, hidden // 2, PLACE_PERIOD).repeat_interleave(width, 0)
            col = sinusoidal_features(width, hidden - hidden // 2, PLACE_PERIOD).repeat(height, 1)
            module.weight.copy_(std * torch.cat([row, col], -1).to(module.weight))


class VideoWorldModelModel(VideoWorldModelPreTrainedModel, LlamaModel):
    """The bare decoder (`AutoModel`); returns `.last_hidden_state`.

    With `config.tokens_per_frame`, each input embedding also gets a learned projection of the
    embedding of [`previous_frame_tokens`] (nothing where there is none); with `config.action_input`,
    one of the embeddings of [`frame_action_tokens`]; with `config.place_input`, a learned embedding of
    the place (row-major index in the grid) of the frame token it predicts.
    """

    def __init__(self, config: VideoWorldModelConfig):
        LlamaModel.__init__(self, config)
        self.previous_frame_projection = self.action_projection = self.place_embedding = None
        if config.tokens_per_frame:
            places = (2 * config.previous_frame_radius + 1) ** 2
            self.previous_frame_projection = nn.Linear(places * config.hidden_size, config.hidden_size, bias=False)
        if config.action_input:
            self.action_projection = nn.Linear(config.action_dim * config.hidden_size, config.hidden_size, bias=False)
        if config.place_input:
            self.place_embedding = nn.Embedding(config.tokens_per_frame, config.hidden_size)
        self.post_init()  # again: Llama's ran before these inputs existed

    def _looked_up(self, ids: torch.LongTensor, projection: nn.Linear) -> torch.Tensor:
        """`projection` of the concatenated embeddings of `ids` `[B, Q, m]`, zeros for `NO_TOKEN`."""
        found = (ids != NO_TOKEN).unsqueeze(-1)
        return projection((self.embed_tokens(ids.clamp(min=0)) * found).flatten(-2))

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                previous_frame_ids: torch.LongTensor | None = None,
                frame_action_ids: torch.LongTensor | None = None, **kwargs):
        if self.previous_frame_projection is not None:
            if input_ids is None:
                raise ValueError("a world model with a previous-frame input needs input_ids, not inputs_embeds")
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            past = cache.get_seq_length() if cache is not None else 0
            if position_ids is None:  # Llama's own default: positions continue after the cache
                position_ids = (torch.arange(input_ids.shape[1], device=input_ids.device) + past).unsqueeze(0)
            if past and (previous_frame_ids is None or (self.action_projection is not None and frame_action_ids is None)):
                raise ValueError("after a KV cache, pass previous_frame_ids (and frame_action_ids with an action "
                                 "input; generate() does it): the earlier tokens are not in this call's input_ids")
            if previous_frame_ids is None:
                previous_frame_ids = previous_frame_tokens(input_ids, position_ids, **self.config.previous_frame_layout)
            inputs_embeds = self.embed_tokens(input_ids) + self._looked_up(previous_frame_ids, self.previous_frame_projection)
            if self.action_projection is not None:
                if frame_action_ids is None:
                    frame_action_ids = frame_action_tokens(input_ids, position_ids, **self.config.action_layout)
                inputs_embeds = inputs_embeds + self._looked_up(frame_action_ids, self.action_projection)
            if self.place_embedding is not None:
                places = predicted_places(position_ids.expand(input_ids.shape[0], -1), self.config.frame_starts,
                                          self.config.tokens_per_frame)
                inputs_embeds = inputs_embeds + self.place_embedding(places.clamp(min=0)) * (places != NO_TOKEN).unsqueeze(-1)
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
            if self.config.action_input:
                inputs["frame_action_ids"] = frame_action_tokens(input_ids, positions, **self.config.action_layout)
        return inputs


__all__ = ["VideoWorldModelForCausalLM", "VideoWorldModelModel", "VideoWorldModelPreTrainedModel", "frame_action_tokens",
           "predicted_places", "previous_frame_tokens", "sinusoidal_features"]
