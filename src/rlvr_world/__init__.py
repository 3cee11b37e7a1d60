"""rlvr-world."""
from .video import tokenizer as _video_tokenizer  # noqa: F401,E402  (registers the VQGAN+FSQ tokenizers with AutoConfig/AutoModel)
from .video import world_model as _video_world_model  # noqa: F401,E402  (registers the video world model with AutoConfig/AutoModel/AutoModelForCausalLM)
