"""The autoregressive video world model, registered with the Auto classes.

Importing this package (which `import rlvr_world` does) makes `AutoConfig`, `AutoModel` and
`AutoModelForCausalLM.from_pretrained(dir)` work for saved world models without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .configuration_video_world_model import VideoWorldModelConfig
from .modeling_video_world_model import (
    VideoWorldModelForCausalLM,
    VideoWorldModelModel,
    VideoWorldModelPreTrainedModel,
)

AutoConfig.register(VideoWorldModelConfig.model_type, VideoWorldModelConfig, exist_ok=True)
AutoModel.register(VideoWorldModelConfig, VideoWorldModelModel, exist_ok=True)
AutoModelForCausalLM.register(VideoWorldModelConfig, VideoWorldModelForCausalLM, exist_ok=True)

__all__ = [
    "VideoWorldModelConfig",
    "VideoWorldModelForCausalLM",
    "VideoWorldModelModel",
    "VideoWorldModelPreTrainedModel",
]
