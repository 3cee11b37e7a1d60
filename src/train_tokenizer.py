"""Train a VQGAN+FSQ visual tokenizer: ``python src/train_tokenizer.py RECIPE.yaml [--key value ...]``.

Examples::

    python src/train_tokenizer.py recipes/tiny/tokenizer_pusht.yaml
    python src/train_tokenizer.py recipes/tiny/tokenizer_pusht.yaml --max_steps 20 --output_dir runs/try
    accelerate launch src/train_tokenizer.py recipes/tokenizer_rt1.yaml --model.fsq_levels "[8,8,8,5,5,5]"

Running the same command again continues from the last checkpoint in ``output_dir``.
"""

import sys

from rlvr_world.video.tokenizer.training import main

if __name__ == "__main__":
    sys.exit(main())
