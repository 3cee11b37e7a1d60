"""Generation throughput of the video world model on CPU: visual tokens per second.

    python bench/bench_video_generation.py                       # tiny PushT layouts, batch 2
    python bench/bench_video_generation.py --batch_size 8 --threads 2 --repeats 3
    python bench/bench_video_generation.py --model runs/tiny/world_model_pusht_single_step

For the single-step layout (the recipe's k=1 context frame of 16x16 tokens, 2 action dims: one
256-token frame and EOS after a 259-token prompt) and the multi-step layout (256 context tokens, 7 frames of 8x8
tokens with the true actions inserted between them) it times

- generation with the KV cache (`use_cache=True`, what rollouts use),
- the same generation without it (every new token re-reads the whole sequence),
- one batched teacher-forced forward pass over the same full sequences (the ideal: all the
  visual tokens' logits in one call),

and prints visual tokens per second, the cache speed-up, and how close cached generation gets to
the forward pass. Weights are random unless --model is given (speed does not depend on them);
the layer sizes are the tiny recipes'. Timings on a shared CPU are noisy: the load is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rlvr_world.video.actions import ActionBinner  # noqa: E402
from rlvr_world.video.generation import generate_next_frame, rollout  # noqa: E402
from rlvr_world.video.pretraining import world_model_config  # noqa: E402
from rlvr_world.video.processor import MULTI_STEP, SINGLE_STEP, VISUAL, VideoWorldModelProcessor  # noqa: E402
from rlvr_world.video.world_model import VideoWorldModelForCausalLM  # noqa: E402

RECIPES = {
    SINGLE_STEP: REPO / "recipes" / "tiny" / "video_pretrain_pusht_single_step.yaml",
    MULTI_STEP: REPO / "recipes" / "tiny" / "video_pretrain_pusht_multi_step.yaml",
}


def tiny_processor(mode: str) -> VideoWorldModelProcessor:
    """The tiny PushT layouts of the recipes, without a tokenizer (generation never decodes here)."""
    recipe = yaml.safe_load(RECIPES[mode].read_text())
    binner = ActionBinner(low=[30.0, 30.0], high=[482.0, 482.0])
    if mode == SINGLE_STEP:
        return VideoWorldModelProcessor(SINGLE_STEP, recipe["num_context_frames"], 1, (16, 16), binner,
                                        num_visual_codes=4375, image_size=(64, 64))
    return VideoWorldModelProcessor(MULTI_STEP, 1, recipe["num_future_frames"], (8, 8), binner, num_visual_codes=4375,
                                    num_context_codes=4375, context_token_shape=(16, 16), image_size=(64, 64))


def load(mode: str, model_dir: str | None):
    if model_dir:
        processor = VideoWorldModelProcessor.from_pretrained(model_dir)
        return VideoWorldModelForCausalLM.from_pretrained(model_dir).eval(), processor
    processor = tiny_processor(mode)
    options = yaml.safe_load(RECIPES[mode].read_text())["world_model_config"]
    torch.manual_seed(0)
    config = world_model_config(processor, options)  # the recipe's extra inputs included, as pretrain.py builds it
    return VideoWorldModelForCausalLM(config).eval(), processor


def random_sequences(processor: VideoWorldModelProcessor, batch: int) -> torch.LongTensor:
    """Full sequences of the layout with random codes and actions."""
    gen = torch.Generator().manual_seed(0)
    frames = processor.num_context_frames + 1 if processor.mode == SINGLE_STEP else processor.num_future_frames
    codes = torch.randint(0, processor.num_visual_codes, (batch, frames, *processor.frame_token_shape), generator=gen)
    actions = processor.action_tokens(torch.rand(batch, frames, processor.action_dim, generator=gen) * 400 + 40)
    context = None
    if processor.mode == MULTI_STEP:
        context = torch.randint(0, processor.num_context_codes, (batch, 1, *processor.context_token_shape), generator=gen)
    return processor.build_sequences(codes, actions, context_codes=context)["input_ids"]


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@torch.no_grad()
def bench(mode: str, batch: int, repeats: int, model_dir: str | None) -> dict:
    model, processor = load(mode, model_dir)
    sequences = random_sequences(processor, batch)
    prompts = sequences[:, : processor.prompt_length]
    visual_tokens = batch * int((processor.token_kinds() == VISUAL).sum()) - (
        batch * processor.num_context_frames * processor.tokens_per_frame if mode == SINGLE_STEP else 0
    )  # generated frame tokens only (single-step prompts hold context frames too)

    if mode == SINGLE_STEP:
        def generate(use_cache):
            return lambda: generate_next_frame(model, processor, prompts, do_sample=True, use_cache=use_cache, seed=0)
    else:
        actions = processor.split_sequence(sequences)["action_ids"][:, 1:]

        def generate(use_cache):
            return lambda: rollout(model, processor, prompts, actions, do_sample=True, use_cache=use_cache, seed=0)

    model(sequences[:, :64])  # warm-up (allocator, kernels); a full generation would double the run time
    cached = _time(generate(True), repeats)
    uncached = _time(generate(False), repeats)
    forward = _time(lambda: model(sequences), repeats)
    return {
        "mode": mode,
        "batch_size": batch,
        "sequence_length": processor.sequence_length,
        "visual_tokens": visual_tokens,
        "parameters_M": round(model.num_parameters() / 1e6, 2),
        "kv_cache_tokens_per_s": visual_tokens / cached,
        "no_cache_tokens_per_s": visual_tokens / uncached,
        "forward_tokens_per_s": visual_tokens / forward,
        "cache_speedup": uncached / cached,
        "share_of_forward": forward / cached,
        "seconds": {"kv_cache": cached, "no_cache": uncached, "forward": forward},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", nargs="+", default=[SINGLE_STEP, MULTI_STEP], choices=[SINGLE_STEP, MULTI_STEP])
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None, help="a saved world model directory (one mode: its own)")
    parser.add_argument("--output", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    modes = args.modes
    if args.model:
        modes = [VideoWorldModelProcessor.from_pretrained(args.model).mode]
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    results = [bench(mode, args.batch_size, args.repeats, args.model) for mode in modes]
    print("\n| layout | batch | visual tokens | KV cache tok/s | no cache tok/s | cache speed-up | "
          "batched forward tok/s | cached / forward |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} ({r['sequence_length']} tokens, {r['parameters_M']}M) | {r['batch_size']} | "
              f"{r['visual_tokens']} | {r['kv_cache_tokens_per_s']:.0f} | {r['no_cache_tokens_per_s']:.0f} | "
              f"{r['cache_speedup']:.1f}x | {r['forward_tokens_per_s']:.0f} | {100 * r['share_of_forward']:.1f}% |")
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
