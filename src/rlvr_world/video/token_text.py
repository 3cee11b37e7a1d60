"""`VisualTokenTokenizer`: the world model's token ids as text, the `processing_class` TRL needs.

TRL's `GRPOTrainer` insists on a `PreTrainedTokenizerBase` (or a `ProcessorMixin`): it reads
`pad_token_id` / `eos_token_id`, pads prompts and completions with them, `batch_decode`s the
completions for the reward callables and logs, and saves the tokenizer with every checkpoint. A
world model has no text, so its "text" here is the id sequence written out: visual, context and
action tokens are their decimal ids and the specials are `<bos>`, `<eos>`, `<pad>`, e.g.
``"17 4371 ... 4632 <bos>"``. A `PreTrainedTokenizer` (python backend) subclass is the smallest
thing that satisfies TRL; a `ProcessorMixin` would make TRL take its multimodal code paths.

The tokenizer never trains and holds no files: its vocabulary follows from the three codebook
sizes of `VideoWorldModelConfig`. When a `VideoWorldModelProcessor` is attached
(`video_processor`), `save_pretrained` also writes the processor and a copy of the frozen visual
tokenizer, so every GRPO checkpoint is a complete world-model directory.
"""

from __future__ import annotations

import os

from transformers import PreTrainedTokenizer

BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"


class VisualTokenTokenizer(PreTrainedTokenizer):
    """Token ids <-> whitespace-separated text, for the video world model's vocabulary layout.

    Args:
        num_visual_codes, num_context_codes, num_action_bins: the vocabulary blocks of
            `VideoWorldModelConfig` (ids ``0 .. n-1`` of the three blocks in that order, then BOS,
            EOS, pad).
    """

    vocab_files_names: dict[str, str] = {}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, num_visual_codes: int = 4375, num_context_codes: int = 0, num_action_bins: int = 256,
                 **kwargs):
        self.num_visual_codes = int(num_visual_codes)
        self.num_context_codes = int(num_context_codes)
        self.num_action_bins = int(num_action_bins)
        self._num_plain = self.num_visual_codes + self.num_context_codes + self.num_action_bins
        self._specials = {BOS: self._num_plain, EOS: self._num_plain + 1, PAD: self._num_plain + 2}
        self._special_ids = {v: k for k, v in self._specials.items()}
        self.video_processor = kwargs.pop("video_processor", None)
        for name, token in (("bos_token", BOS), ("eos_token", EOS), ("pad_token", PAD)):
            kwargs.setdefault(name, token)
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        # Passed on so that they land in init_kwargs, hence in tokenizer_config.json.
        super().__init__(num_visual_codes=self.num_visual_codes, num_context_codes=self.num_context_codes,
                         num_action_bins=self.num_action_bins, **kwargs)

    @classmethod
    def from_model_config(cls, config, **kwargs) -> VisualTokenTokenizer:
        """The tokenizer of a `VideoWorldModelConfig` (its special ids are checked against the config)."""
        tokenizer = cls(config.num_visual_codes, config.num_context_codes, config.num_action_bins, **kwargs)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(tokenizer, name) != getattr(config, name):
                raise ValueError(f"{name}: tokenizer {getattr(tokenizer, name)} != model config {getattr(config, name)}")
        return tokenizer

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return self._num_plain + len(self._specials)

    def get_vocab(self) -> dict[str, int]:
        vocab = {str(i): i for i in range(self._num_plain)}
        vocab.update(self._specials)
        return vocab

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return text.split()

    def _convert_token_to_id(self, token: str) -> int:
        if token in self._specials:
            return self._specials[token]
        if not token.isdigit() or int(token) >= self._num_plain:
            raise ValueError(f"{token!r} is not a token of this vocabulary (ids 0..{self._num_plain - 1} and "
                             f"{', '.join(self._specials)})")
        return int(token)

    def _convert_id_to_token(self, index: int) -> str:
        index = int(index)
        if index in self._special_ids:
            return self._special_ids[index]
        if not 0 <= index < self._num_plain:
            raise ValueError(f"token id {index} is outside the vocabulary (size {self.vocab_size})")
        return str(index)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    # ------------------------------------------------------------------ fast paths (no added-token trie)
    def ids_to_text(self, ids) -> str:
        """Ids -> text, specials included (the inverse of `text_to_ids`)."""
        return " ".join(self._convert_id_to_token(i) for i in ids)

    def text_to_ids(self, text: str) -> list[int]:
        return [self._convert_token_to_id(t) for t in text.split()]

    # ------------------------------------------------------------------ persistence
    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        return ()  # the vocabulary is implied by the three sizes in tokenizer_config.json

    def save_pretrained(self, save_directory, *args, **kwargs):
        files = super().save_pretrained(save_directory, *args, **kwargs)
        if self.video_processor is not None:
            os.makedirs(save_directory, exist_ok=True)
            self.video_processor.save_pretrained(save_directory, save_tokenizer=True)
        return files


def register_auto_tokenizer() -> None:
    """`AutoTokenizer.from_pretrained(dir)` for saved world models (no trust_remote_code)."""
    from transformers import AutoTokenizer

    from rlvr_world.video.world_model import VideoWorldModelConfig

    AutoTokenizer.register(VideoWorldModelConfig, slow_tokenizer_class=VisualTokenTokenizer, exist_ok=True)


__all__ = ["BOS", "EOS", "PAD", "VisualTokenTokenizer", "register_auto_tokenizer"]
