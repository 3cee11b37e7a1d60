"""Merge a LoRA adapter into its base model and save a plain checkpoint with its tokenizer.

    python src/merge_lora.py --adapter runs/sft --output_dir runs/sft-merged [--base_model ID] [--dtype bfloat16]

GRPO with full fine-tuning and `beta > 0` reloads its reference model from the checkpoint's
config, so it needs a plain (merged) checkpoint rather than an adapter.
"""

import argparse
import sys

from rlvr_world.training.merge import merge_lora


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", required=True, help="folder with adapter_config.json (a PEFT LoRA adapter)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--base_model", default=None, help="default: the adapter's base_model_name_or_path")
    parser.add_argument("--dtype", default=None, help="float32, bfloat16, float16 or auto (default: the model's)")
    args = parser.parse_args(argv)
    merge_lora(args.adapter, args.output_dir, args.base_model, args.dtype)
    print(f"wrote {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
