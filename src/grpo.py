"""GRPO (RLVR) post-training of a world model with TRL's `GRPOTrainer`.

    python src/grpo.py RECIPE.yaml [--key value ...]
    accelerate launch --config_file recipes/accelerate/zero2.yaml src/grpo.py RECIPE.yaml [...]

The recipe fills `GRPOScriptArguments` (rlvr_world.configs), `trl.GRPOConfig` and `trl.ModelConfig`;
its `task` field picks the dataset builder, the reward functions and (for video) the rollout hook.
A run started again with the same command resumes from the last complete checkpoint in output_dir.
"""

import time

from rlvr_world.configs import GRPOScriptArguments
from rlvr_world.training.cli import resolve_resume, run_cli


def main(script_args, training_args, model_args):
    from trl import get_peft_config

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
    from rlvr_world.training.grpo_trainer import TimedGRPOTrainer
    from rlvr_world.training.tasks import get_task

    setup_logging(training_args)
    apply_threads(script_args)
    score_labelled_positions_only()
    if not model_args.model_name_or_path:
        raise SystemExit("error: the recipe must set model_name_or_path")
    if not script_args.dataset_name:
        raise SystemExit("error: the recipe must set dataset_name")
    task = get_task(script_args.task)
    normalize_model_args(model_args)
    apply_model_init_kwargs(model_args, training_args)

    # Video tasks hand TRL their own processing class (a visual-token tokenizer); text tasks let TRL load the model's.
    processing_class = task.load_processing_class(model_args) if task.load_processing_class else None
    tokenizer = processing_class if processing_class is not None else load_tokenizer(model_args)
    train_dataset, data_info = task.build_grpo_dataset(script_args, training_args, tokenizer)
    # The builder lays the (rebalanced) epochs out in order and shuffles within each: walk them as laid out.
    training_args.shuffle_dataset = False
    if not (training_args.max_steps and training_args.max_steps > 0):
        training_args.num_train_epochs = 1
    logger.info("GRPO data: %s", data_info)

    reward_funcs = task.build_reward_funcs(script_args.reward_funcs, script_args.reward_kwargs)
    rollout_func = task.build_rollout_func(script_args, training_args, tokenizer) if task.build_rollout_func else None

    callbacks = standard_callbacks(task, script_args, training_args, tokenizer)
    if task.build_callbacks:
        callbacks += task.build_callbacks(script_args, training_args, tokenizer)

    trainer = TimedGRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=processing_class,
        peft_config=get_peft_config(model_args),
        rollout_func=rollout_func,
        callbacks=callbacks,
    )
    checkpoint = resolve_resume(training_args, script_args.auto_resume)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    write_run_info(training_args, {
        "script": "grpo", "started": time.strftime("%Y-%m-%d %H:%M:%S"), "resume_from": checkpoint,
        "data": data_info, "reward_funcs": script_args.reward_funcs, "reward_kwargs": script_args.reward_kwargs,
    })
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(training_args.output_dir)  # with the tokenizer
    logger.info("saved %s (global_step %d)", training_args.output_dir, trainer.state.global_step)
    trainer.end()
    return trainer


def parser_types():
    from trl import GRPOConfig, ModelConfig

    return (GRPOScriptArguments, GRPOConfig, ModelConfig)


if __name__ == "__main__":
    run_cli(main, parser_types())
