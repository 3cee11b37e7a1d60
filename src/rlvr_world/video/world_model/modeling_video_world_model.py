"""The autoregressive video world model: transformers' Llama decoder over visual and action tokens.

Nothing here re-implements attention: the decoder, its KV cache and `generate` are Llama's. The
subclasses only bind the [`VideoWorldModelConfig`] (whose vocabulary layout fixes `vocab_size` and
the special tokens) so that the Auto classes load saved world models without remote code.
"""

from __future__ import annotations

from torch import nn
from transformers import GenerationMixin, LlamaModel, LlamaPreTrainedModel
from transformers.models.llama.modeling_llama import LlamaForCausalLM

from .configuration_video_world_model import VideoWorldModelConfig


class VideoWorldModelPreTrainedModel(LlamaPreTrainedModel):
    config_class = VideoWorldModelConfig
    config: VideoWorldModelConfig


class VideoWorldModelModel(VideoWorldModelPreTrainedModel, LlamaModel):
    """The bare decoder (`AutoModel`); returns `.last_hidden_state`."""

    def __init__(self, config: VideoWorldModelConfig):
        LlamaModel.__init__(self, config)


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


__all__ = ["VideoWorldModelForCausalLM", "VideoWorldModelModel", "VideoWorldModelPreTrainedModel"]
