"""VQGAN+FSQ visual tokenizers (per-frame and compressive), registered with the Auto classes.

Importing this package (which `import rlvr_world` does) makes
`AutoConfig.from_pretrained(dir)` / `AutoModel.from_pretrained(dir)` work for saved tokenizers
without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoModel

from .configuration_compressive_vqgan_fsq import CompressiveVQGANFSQConfig
from .configuration_vqgan_fsq import VQGANFSQConfig
from .modeling_compressive_vqgan_fsq import (
    CompressiveVQGANFSQModel,
    CompressiveVQGANFSQOutput,
    ContextCache,
)
from .modeling_vqgan_fsq import VQGANFSQModel, VQGANFSQOutput

AutoConfig.register(VQGANFSQConfig.model_type, VQGANFSQConfig, exist_ok=True)
AutoModel.register(VQGANFSQConfig, VQGANFSQModel, exist_ok=True)
AutoConfig.register(CompressiveVQGANFSQConfig.model_type, CompressiveVQGANFSQConfig, exist_ok=True)
AutoModel.register(CompressiveVQGANFSQConfig, CompressiveVQGANFSQModel, exist_ok=True)

__all__ = [
    "CompressiveVQGANFSQConfig",
    "CompressiveVQGANFSQModel",
    "CompressiveVQGANFSQOutput",
    "ContextCache",
    "VQGANFSQConfig",
    "VQGANFSQModel",
    "VQGANFSQOutput",
]
