"""rlvr-world."""
from .video import tokenizer as _video_tokenizer  # noqa: F401,E402  (registers the VQGAN+FSQ tokenizers with AutoConfig/AutoModel)
