"""Supervised fine-tuning of a world model on demonstrations with TRL's `SFTTrainer`.

    python src/sft.py RECIPE.yaml [--key value ...]

The dataset is in prompt-completion form, so the loss covers the answer only (TRL's
completion-only loss). LoRA through PEFT when the recipe sets `use_peft: true` (the paper: r=32,
alpha=16, `lora_target_modules: all-linear`), full fine-tuning otherwise. `num_demonstrations`
draws a seeded subset of the train split. A run started again with the same command resumes from
the last complete checkpoint in output_dir.
"""

import time

from rlvr_world.configs import SFTScriptArguments
from rlvr_world.training.cli import resolve_resume, run_cli


def main(script_args, training_args, model_args):
    from trl import SFTTrainer, get_peft_config

    from rlvr_world.training.callbacks import standard_callbacks
    from rlvr_world.training.common import (
        apply_model_init_kwargs,
        apply_threads,
        load_tokenizer,
        logger,
        normalize_model_args,
        score_labelled_positions_only,
        setup_logging,
        write_run_info,
    )
    from rlvr_world.training.tasks import get_task

    setup_logging(training_args)
    apply_threads(script_args)
    score_labelled_positions_only()
    if not model_args.model_name_or_path:
        raise SystemExit("error: the recipe must set model_name_or_path")
    if not script_args.dataset_name:
        raise SystemExit("error: the recipe must set dataset_name")
    task = get_task(script_args.task)
    if task.build_sft_dataset is None:
        raise SystemExit(f"error: task {task.name!r} has no SFT dataset builder")
    normalize_model_args(model_args)
    apply_model_init_kwargs(model_args, training_args)

    tokenizer = load_tokenizer(model_args)
    train_dataset, data_info = task.build_sft_dataset(script_args, training_args, tokenizer)
    logger.info("SFT data: %s", data_info)

    callbacks = standard_callbacks(task, script_args, training_args, tokenizer)

    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=callbacks,
    )
    checkpoint = resolve_resume(training_args, script_args.auto_resume)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    write_run_info(training_args, {
        "script": "sft", "started": time.strftime("%Y-%m-%d %H:%M:%S"), "resume_from": checkpoint, "data": data_info,
    })
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(training_args.output_dir)  # the adapter with LoRA, else the full model; with the tokenizer
    logger.info("saved %s (global_step %d)", training_args.output_dir, trainer.state.global_step)
    if model_args.use_peft and script_args.merged_output_dir:
        trainer.accelerator.wait_for_everyone()
        if trainer.accelerator.is_main_process:
            from rlvr_world.training.merge import merge_lora

            merge_lora(training_args.output_dir, script_args.merged_output_dir, model_args.model_name_or_path)
            logger.info("merged the adapter into %s", script_args.merged_output_dir)
    trainer.end()
    return trainer


def parser_types():
    from trl import ModelConfig, SFTConfig

    return (SFTScriptArguments, SFTConfig, ModelConfig)


if __name__ == "__main__":
    run_cli(main, parser_types())
