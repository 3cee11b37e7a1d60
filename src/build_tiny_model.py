"""Build the embedded tiny model from nothing: a byte-level BPE tokenizer trained on a dataset's
prompts and answers, and a small randomly initialised Qwen2-style causal LM.

    python src/build_tiny_model.py --data runs/data/textgame --output_dir runs/models/tiny

The result loads offline with `AutoTokenizer` / `AutoModelForCausalLM.from_pretrained(output_dir)`.
See `rlvr_world.training.tiny_model` for the tokenizer design.
"""

import argparse
import json
import sys

from rlvr_world.training.tiny_model import TinyModelConfig, build_tiny_model, texts_from_dataset


def main(argv=None):
    defaults = TinyModelConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a save_to_disk dataset with prompt/completion columns")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--splits", nargs="+", default=["train"],
                        help="splits whose text trains the tokenizer (default: train only, no held-out text)")
    for name, value in vars(defaults).items():
        kind = (lambda s: s.lower() in ("1", "true", "yes")) if isinstance(value, bool) else type(value)
        parser.add_argument(f"--{name}", type=kind, default=value)
    args = parser.parse_args(argv)
    config = TinyModelConfig(**{k: getattr(args, k) for k in vars(defaults)})
    texts = texts_from_dataset(args.data, args.splits)
    if not texts:
        parser.error(f"no prompt/completion text found in {args.data} splits {args.splits}")
    summary = build_tiny_model(texts, args.output_dir, config)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))
    print(f"wrote {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
