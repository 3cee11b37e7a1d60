"""`GRPOTrainer` with wall-clock timings in its logs.

TRL logs `step_time` (one optimizer step, generation included) but sends its finer profiling
only to wandb/mlflow/trackio. This subclass adds, per optimizer step and averaged like TRL's
other metrics:

- `timing/generation_s`: generating completions (tokenising prompts, sampling, decoding);
- `timing/reward_s`: the reward functions;
- `timing/generated_tokens`: completion tokens generated (this process);
- `timing/tokens_per_s`: generated tokens / generation seconds.

`optimisation = step_time - generation - reward` (log-prob passes for the old/reference policy,
the loss forward/backward and the optimizer step) is derived by `bench/bench_grpo.py`.
"""

from __future__ import annotations

import time

from trl import GRPOTrainer


class TimedGRPOTrainer(GRPOTrainer):
    def _generate(self, prompts):
        start = time.perf_counter()
        output = super()._generate(prompts)
        seconds = time.perf_counter() - start
        completion_ids = output[1]
        tokens = sum(len(ids) for ids in completion_ids)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["timing/generation_s"].append(seconds)
        self._metrics[mode]["timing/generated_tokens"].append(float(tokens))
        self._metrics[mode]["timing/tokens_per_s"].append(tokens / seconds if seconds > 0 else 0.0)
        return output

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        start = time.perf_counter()
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["timing/reward_s"].append(time.perf_counter() - start)
        return rewards
