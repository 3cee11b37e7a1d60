"""One training step of a causal LM on CPU: LoRA or full fine-tuning, fp32 or bf16 autocast.

    python bench/bench_lm_step.py --model runs/demo_smollm2/models/smollm2-135m-instruct

Forward + backward of `--batch` x `--tokens` random tokens (loss over every position, the model's own
head), accumulated `--accumulate` times, then an AdamW step; prints seconds per step for each of the four
settings (the first step of each is a warm-up). Says whether this CPU computes bf16 natively: without
AVX512-BF16 or AMX autocast is emulated and many times slower, which is why the recipes say `bf16: auto`.
"""

from __future__ import annotations

import argparse
import statistics
import time


def step_seconds(model_dir: str, lora: bool, bf16: bool, batch: int, tokens: int, accumulate: int, steps: int) -> list[float]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if lora:  # the small recipes' adapter
        model = get_peft_model(model, LoraConfig(r=32, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        for _ in range(accumulate):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return times[1:]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=800)
    parser.add_argument("--accumulate", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from rlvr_world.training.precision import cpu_has_native_bf16

    torch.set_num_threads(args.threads)
    print(f"native bf16 on this CPU: {cpu_has_native_bf16()}; {args.threads} threads; "
          f"{args.batch * args.accumulate} x {args.tokens} tokens per step")
    results = {}
    for lora in (True, False):
        for bf16 in (False, True):
            times = step_seconds(args.model, lora, bf16, args.batch, args.tokens, args.accumulate, args.steps)
            name = f"{'LoRA' if lora else 'full'} {'bf16' if bf16 else 'fp32'}"
            results[name] = statistics.median(times)
            print(f"{name:10s} {results[name]:6.1f} s / step  ({', '.join(f'{t:.1f}' for t in times)})", flush=True)
    return results


if __name__ == "__main__":
    main()
