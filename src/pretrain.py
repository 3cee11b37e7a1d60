"""MLE pre-training of the autoregressive video world model with transformers' `Trainer`.

    python src/pretrain.py RECIPE.yaml [--key value ...]

The episodes are tokenised once (frozen visual tokenizer, 256 action bins per dimension) into a
cached HF dataset of fixed-length windows; then next-token training on the frame tokens
(single-step: BOS..EOS; multi-step: every future frame's tokens). The output directory holds the
model, its processor and a copy of the tokenizer, so `from_pretrained` of it is all one needs. A run
started again with the same command resumes from the last complete checkpoint in output_dir.
"""

from rlvr_world.configs import VideoPretrainScriptArguments
from rlvr_world.training.cli import run_cli


def main(script_args, training_args):
    from rlvr_world.training.common import setup_logging
    from rlvr_world.video.pretraining import pretrain

    setup_logging(training_args)
    if not script_args.dataset_name or not script_args.tokenizer_name_or_path:
        raise SystemExit("error: the recipe must set dataset_name and tokenizer_name_or_path")
    return pretrain(script_args, training_args)


def parser_types():
    from transformers import TrainingArguments

    return (VideoPretrainScriptArguments, TrainingArguments)


if __name__ == "__main__":
    run_cli(main, parser_types())
