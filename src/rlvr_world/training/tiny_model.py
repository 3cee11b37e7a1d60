"""The embedded tiny model: a byte-level BPE tokenizer trained on the task's own text and a small
Qwen-style causal LM, both built from nothing (no Hub) and saved with `save_pretrained`.

Architecture: `Qwen3ForCausalLM` by default (Qwen2's decoder with per-head q/k RMSNorm and no qkv
bias), or `Qwen2ForCausalLM` with `architecture="qwen2"`. Why Qwen3 by default: transformers 5's
`AutoTokenizer` forces `Qwen2Tokenizer` on every `model_type: qwen2` folder (qwen2 is listed in
`MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS`), and that class rebuilds the pre-tokenizer with Qwen's
word-splitting regex, discarding ours; for `qwen3` it loads `tokenizer.json` as saved. With
`architecture="qwen2"` the tokenizer is therefore trained with Qwen's own regex (and NFC), so that
what `AutoTokenizer` rebuilds is what was trained, at about 3x more tokens per text.

Tokenizer design for the default (it decides how fast the CPU demo runs):

- byte-level BPE (any input round-trips, no unknown tokens);
- digits are split one per token, and object names (`glass bin (ID: `) are pre-split into pieces of
  their own wherever they occur (a JSON string, a `contains` list, the action line), so one object
  has one token everywhere and the model copies it by matching identical tokens; a pilot without
  this wrote the right ID with the wrong name (`paper bin (ID: 2)` for `glass bin (ID: 2)`)
  because each context merged the name into a different token;
- everything else is *not* pre-split on spaces or punctuation, so
  merges may cross word boundaries and the JSON scaffolding that repeats in every state
  (`", "properties": {"isContainer": `) becomes a few tokens. On the generated games (vocab 2048):
  GPT-2-style word pre-splitting gives ~3x more tokens than merges capped at 24 characters, which
  give ~2x more than merges capped at 64 (prompts ~100 tokens, changed answers ~22); in a pilot the
  64-character tokenizer also reached a higher SFT accuracy in half the time (43.5% vs 30% on
  held-out transitions after 300 steps on 400 demonstrations);
- chat roles are special tokens (`<|user|>`, `<|assistant|>`, `<|system|>`), each message ends
  with `<|end|>` (the EOS); since special tokens always split the text, the prompt's tokens are an
  exact prefix of prompt+completion's tokens, as TRL's completion-only loss and GRPO expect;
- `<|pad|>` pads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|end|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD_TOKEN, EOS_TOKEN, *ROLE_TOKENS)

# Roles outside the three above are rendered as plain text headers.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] in ['system', 'user', 'assistant'] -%}"
    "{{ '<|' + message['role'] + '|>' }}"
    "{%- else -%}"
    "{{ '<|user|>' + message['role'] + ': ' }}"
    "{%- endif -%}"
    "{{ message['content'] + '<|end|>' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>' }}{%- endif -%}"
)


# Pieces isolated before BPE: an object name at the start of a JSON string, the verb(s) opening the
# action line ("take ", "turn on "), and a preposition after a name ("in ", "to "), so that what
# remains of an action is the same name piece as in the state.
NAME_REGEX = r'(?<=")[A-Za-z][^"\n]*? \(ID: '
ACTION_VERB_REGEX = r"(?<=is:\n)(?:turn on |turn off |look at |[a-z]+ )"
PREPOSITION_REGEX = r"(?<=\) )[a-z]+ "


@dataclass
class TinyModelConfig:
    architecture: str = "qwen3"  # "qwen3" or "qwen2" (see the module docstring)
    vocab_size: int = 2048
    hidden_size: int = 192
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 768
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    max_token_chars: int = 64  # longest merged token, in characters (see the module docstring)
    seed: int = 0


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048, max_token_chars: int = 64,
                    qwen2_regex: bool = False):
    """A `PreTrainedTokenizerFast` with the design described in the module docstring.

    `qwen2_regex=True` pre-splits words like Qwen2's tokenizer (needed for `model_type: qwen2`).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    if qwen2_regex:
        from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

        backend.normalizer = normalizers.NFC()
        first = pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False)
    else:
        first = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True)]
            + [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in (NAME_REGEX, ACTION_VERB_REGEX, PREPOSITION_REGEX)]
        )
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [first, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        max_token_length=max_token_chars,
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        additional_special_tokens=list(ROLE_TOKENS),
        padding_side="left",
        model_max_length=1 << 30,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


ARCHITECTURES = {"qwen3": ("Qwen3Config", "Qwen3ForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM")}


def build_model(tokenizer, config: TinyModelConfig | None = None):
    """A randomly initialised Qwen3/Qwen2 causal LM sized by `config`, wired to `tokenizer`'s ids."""
    import torch
    import transformers
    from transformers import GenerationConfig

    config = config or TinyModelConfig()
    if config.architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {config.architecture!r}")
    config_name, model_name = ARCHITECTURES[config.architecture]
    extra = {"head_dim": config.hidden_size // config.num_attention_heads} if config.architecture == "qwen3" else {}
    torch.manual_seed(config.seed)
    model_config = getattr(transformers, config_name)(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        rope_theta=config.rope_theta,
        tie_word_embeddings=config.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        use_cache=True,
        **extra,
    )
    model = getattr(transformers, model_name)(model_config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        do_sample=False,
    )
    return model


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build_tiny_model(texts: list[str], output_dir: str | Path, config: TinyModelConfig | None = None) -> dict:
    """Train the tokenizer on `texts`, build the model, save both to `output_dir`; return a summary."""
    config = config or TinyModelConfig()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, config.vocab_size, config.max_token_chars,
                                qwen2_regex=config.architecture == "qwen2")
    model = build_model(tokenizer, config)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    check_reload(output_dir, tokenizer, texts[:50])
    n_tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    summary = {
        "parameters": count_parameters(model),
        "vocab_size": len(tokenizer),
        "training_texts": len(texts),
        "training_chars": sum(len(t) for t in texts),
        "training_tokens": n_tokens,
        "config": asdict(config),
    }
    (output_dir / "tiny_model.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def check_reload(output_dir, tokenizer, texts: list[str]) -> None:
    """`AutoTokenizer` must rebuild exactly the tokenizer that was trained (see the module docstring)."""
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(str(output_dir))
    for text in texts:
        if reloaded(text, add_special_tokens=False)["input_ids"] != tokenizer(text, add_special_tokens=False)["input_ids"]:
            raise RuntimeError(
                f"AutoTokenizer reloads {output_dir} as {type(reloaded).__name__}, which tokenizes differently "
                "from the trained tokenizer"
            )
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    if reloaded.apply_chat_template(messages, tokenize=False) != tokenizer.apply_chat_template(messages, tokenize=False):
        raise RuntimeError(f"the chat template of {output_dir} did not survive save/reload")


def _message_text(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return []


def texts_from_dataset(path: str | Path, splits: list[str] | None = None, columns=("prompt", "completion")):
    """Prompt and answer texts of a `save_to_disk` dataset (chat messages or plain strings)."""
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    names = splits or list(loaded)
    missing = [s for s in names if s not in loaded]
    if missing:
        raise ValueError(f"split(s) {missing} not in {path} (has {list(loaded)})")
    texts: list[str] = []
    for name in names:
        split = loaded[name]
        for column in columns:
            if column in split.column_names:
                for value in split[column]:
                    texts.extend(_message_text(value))
    return texts
