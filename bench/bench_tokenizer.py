"""Encode/decode throughput of the VQGAN+FSQ tokenizers on CPU or a GPU (frames per second, batch 32).

    python bench/bench_tokenizer.py                 # tiny (64x64 PushT) and paper (256x320 RT-1) configs
    python bench/bench_tokenizer.py --configs tiny  # only the tiny ones
    python bench/bench_tokenizer.py --threads 2 --repeats 3
    python bench/bench_tokenizer.py --device cuda --dtype bfloat16

Configs come from the recipes (`recipes/tiny/tokenizer_pusht*.yaml`, `recipes/tokenizer_rt1*.yaml`),
with random weights (speed does not depend on them). The compressive tokenizer is timed on
clips of 1 context + 7 future frames (the multi-step layout): encode = context + future codes,
decode = context decode + future decode, and `decode_future` alone with a cached context (what a
rollout pays per predicted frame). Timings on a shared CPU are noisy: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rlvr_world.video.tokenizer.training import build_model, parse_config  # noqa: E402

RECIPES = {
    "tiny": {
        "vqgan_fsq": REPO / "recipes" / "tiny" / "tokenizer_pusht.yaml",
        "compressive_vqgan_fsq": REPO / "recipes" / "tiny" / "tokenizer_pusht_compressive.yaml",
    },
    "paper": {
        "vqgan_fsq": REPO / "recipes" / "tokenizer_rt1.yaml",
        "compressive_vqgan_fsq": REPO / "recipes" / "tokenizer_rt1_compressive.yaml",
    },
}
SIZES = {"tiny": (64, 64), "paper": (256, 320)}


def _time(fn, repeats: int) -> float:
    def timed():
        start = time.perf_counter()
        fn()
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()  # GPU kernels run asynchronously
        return time.perf_counter() - start

    timed()  # warm-up
    return min(timed() for _ in range(repeats))


@torch.no_grad()
def bench(scale: str, kind: str, batch: int, repeats: int, device: str = "cpu",
          dtype: torch.dtype = torch.float32) -> list[tuple[str, float]]:
    config = parse_config([str(RECIPES[scale][kind])])
    config.init_from = None
    model = build_model(config).eval().to(device)
    height, width = SIZES[scale]
    torch.manual_seed(0)
    rows = []
    with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
        if kind == "vqgan_fsq":
            frames = torch.rand(batch, 1, 3, height, width, device=device)
            codes = model.encode(frames)
            rows.append(("encode", batch / _time(lambda: model.encode(frames), repeats)))
            rows.append(("decode", batch / _time(lambda: model.decode(codes), repeats)))
        else:
            clip_length = 8
            clips = max(1, batch // clip_length)
            frames = torch.rand(clips, clip_length, 3, height, width, device=device)
            n = clips * clip_length
            context_codes, future_codes = model.encode(frames)
            rows.append(("encode (1+7 clip)", n / _time(lambda: model.encode(frames), repeats)))
            rows.append(("decode (1+7 clip)", n / _time(lambda: model.decode(context_codes, future_codes), repeats)))
            cache = model.context_from_codes(context_codes)
            future = future_codes.flatten(0, 1)[:batch].reshape(clips, -1, *future_codes.shape[-2:])
            frames_per_call = future.shape[0] * future.shape[1]
            rows.append(("decode_future (cached context)",
                         frames_per_call / _time(lambda: model.decode_future(future, cache), repeats)))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return [(f"{scale:5s} {kind:22s} {height}x{width} {params:6.1f}M  {name}", fps) for name, fps in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "paper"], choices=["tiny", "paper"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="autocast dtype")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, {args.dtype}, batch {args.batch}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for scale in args.configs:
        for kind in ("vqgan_fsq", "compressive_vqgan_fsq"):
            for label, fps in bench(scale, kind, args.batch, args.repeats, args.device, getattr(torch, args.dtype)):
                print(f"{label:75s} {fps:9.1f} frames/s", flush=True)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
