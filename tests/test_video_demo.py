import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_video_demo_quick_runs_every_stage_and_writes_the_report(tmp_path):
    """`make demo-video` with seconds-long stages on the untrained smoke models: GRPO, the equal-time MLE
    control, evaluation of base / RLVR / control / copy, curves, pictures and both reports."""
    out = tmp_path / "video"
    subprocess.run([sys.executable, "-m", "rlvr_world.demos.video", "--quick", "--modes", "single_step",
                    "--output_dir", str(out), "--parallel", "2"], check=True, capture_output=True, text=True)
    report = json.loads((out / "report.json").read_text())
    rows = {r["model"]: r for r in report["rows"]}
    assert set(rows) == {"copy last frame", "base", "RLVR", "continued MLE"}
    for r in rows.values():
        assert set(r) == {"model", "task", "mse", "mae", "psnr", "ssim", "lpips", "repetition_rate"}
        assert r["task"] == "video_single_step" and 0.0 <= r["mse"] < 1.0 and r["mae"] >= 0.0
    assert (out / "grpo_single_step" / "model.safetensors").is_file()
    assert (out / "mle_single_step" / "model.safetensors").is_file()
    assert report["mle_curves"]["single_step"][0]["step"] == 0
    # the control trained beside GRPO, and at least as long as GRPO's training took
    grpo_seconds = [json.loads(line) for line in (out / "grpo_single_step" / "log.jsonl").read_text().splitlines()
                    if "train_runtime" in line][-1]["wall_s"]
    assert json.loads((out / "mle_single_step" / "train_summary.json").read_text())["train_wall_s"] >= round(grpo_seconds, 1)
    starts = report["timings"]
    assert abs(starts["grpo_single_step"]["start_s"] - starts["mle_single_step"]["start_s"]) < 5.0
    assert starts["curve_and_pictures_single_step"]["seconds"] > 0  # drawn beside the evaluations
    assert (out / "curves.png").stat().st_size > 10_000
    assert report["pictures"] and all((out / p["grid"]).is_file() and (out / p["gif"]).is_file()
                                      for p in report["pictures"])
    text = (out / "report.md").read_text()
    assert "| RLVR | video_single_step |" in text and "## Wall time" in text


def test_findings_report_each_mode_with_its_own_step_count():
    from rlvr_world.demos.video import findings

    def r(model, task, mae, lpips, mse, rep=None):
        return {"model": model, "task": task, "mae": mae, "lpips": lpips, "mse": mse, "repetition_rate": rep}

    rows = [r("base", "video_single_step", 0.004, 0.036, 9e-4), r("RLVR", "video_single_step", 0.003, 0.027, 8e-4),
            r("continued MLE", "video_single_step", 0.004, 0.034, 9e-4),
            r("base", "video_multi_step", 0.02, 0.1, 4e-3, 0.95), r("RLVR", "video_multi_step", 0.02, 0.1, 5e-3, 0.5),
            r("continued MLE", "video_multi_step", 0.02, 0.09, 4e-3, 0.6)]
    lines = findings(rows, {"single_step": 100, "multi_step": 50})
    assert "0.0400 -> 0.0300" in lines[0] and "100 GRPO steps: +25.0%" in lines[0] and lines[0].endswith("better): met")
    assert "0.0380 (+5.0% relative to base)" in lines[1]
    assert "0.950 -> 0.500 (lower)" in lines[2] and "(WORSE)" in lines[2]  # MSE rose
    assert lines[3] == ("- multi-step control: continued MLE for the same wall time gives MAE + LPIPS 0.11 against RLVR's "
                        "0.12 (base 0.12: control ahead); MSE 0.004 against RLVR's 0.005 (base 0.004: control ahead); "
                        "repetition 0.6 against RLVR's 0.5 (base 0.95: RLVR ahead)")


def test_one_grpo_step_count_or_one_per_mode():
    from rlvr_world.demos.video import main

    with pytest.raises(SystemExit):
        main(["--modes", "single_step", "--grpo_steps", "10", "20"])


def test_grpo_stage_sees_each_training_window_once(tmp_path):
    from rlvr_world.demos.video import grpo_stage

    def train_samples(extra):
        stage = grpo_stage("multi_step", tmp_path / "base", tmp_path / "data", tmp_path / "run", "video_mae_lpips", 50,
                           "python", extra)
        return int(stage.command[stage.command.index("--max_train_samples") + 1])

    assert train_samples([]) == 50 * 4  # the recipe: 32 completions a step, groups of 8
    assert train_samples(["--num_generations", "4"]) == 50 * 8
    assert train_samples(["--per_device_train_batch_size", "8", "--num_generations", "4"]) == 50 * 2


def test_control_trains_until_the_matched_run_has_finished_and_as_long(tmp_path):
    """`--match_train_seconds_of`: no stop while the GRPO run is still training; once its log has the final
    `train_runtime` record, stop as soon as this run has trained as long."""
    from types import SimpleNamespace

    from rlvr_world.training.callbacks import (
        MatchTrainTimeCallback,
        finished_train_seconds,
    )

    run = tmp_path / "grpo"
    run.mkdir()
    callback = MatchTrainTimeCallback(str(run), poll_seconds=0.0)
    state, control = SimpleNamespace(global_step=7), SimpleNamespace(should_training_stop=False, should_save=False)
    callback.on_train_begin(None, state, control)
    callback.on_step_end(None, state, control)  # no log yet: still training
    (run / "log.jsonl").write_text(json.dumps({"step": 1, "wall_s": 0.1, "loss": 1.0}) + "\n")
    callback.on_step_end(None, state, control)
    assert finished_train_seconds(str(run)) is None and not control.should_training_stop
    with open(run / "log.jsonl", "a") as f:
        f.write(json.dumps({"step": 2, "wall_s": 3600.0, "train_runtime": 3600.0}) + "\n")
    callback.on_step_end(None, state, control)  # finished, but trained an hour: this run goes on
    assert callback.max_seconds == 3600.0 and not control.should_training_stop
    callback.max_seconds = 0.0  # as if this run had now trained as long
    callback.on_step_end(None, state, control)
    assert control.should_training_stop and control.should_save


def test_stages_run_side_by_side_and_a_failure_stops_the_others(tmp_path):
    import time

    from rlvr_world.demos import video

    timings = {}
    sleep = [sys.executable, "-c", "import time; time.sleep(1.5); print('done')"]
    video._run_stages([video.Stage("a", sleep, tmp_path / "a.log"), video.Stage("b", sleep, tmp_path / "b.log")],
                      timings, parallel=2)
    assert abs(timings["a"]["start_s"] - timings["b"]["start_s"]) < 1.0  # both started at once
    assert (tmp_path / "a.log").read_text().strip() == "done"
    start = time.perf_counter()
    with pytest.raises(SystemExit, match="b failed"):
        video._run_stages([video.Stage("a", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "c.log"),
                           video.Stage("b", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "d.log")],
                          {}, parallel=2)
    assert time.perf_counter() - start < 30  # the sleeper was stopped, not waited for


def test_random_update_control_moves_each_tensor_as_far_as_the_trained_change(tmp_path):
    """bench/bench_random_update.py: BASE + seeded noise whose per-tensor norm is that of CHANGED - BASE."""
    import importlib.util

    import torch
    from safetensors.torch import load_file, save_file

    spec = importlib.util.spec_from_file_location("bench_random_update", REPO / "bench" / "bench_random_update.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    base, changed = tmp_path / "base", tmp_path / "changed"
    for folder in (base, changed):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    weights = {"a": torch.ones(4, 3), "b": torch.full((5,), 2.0)}
    save_file(weights, base / "model.safetensors")
    save_file({"a": weights["a"] + 0.5, "b": weights["b"].clone()}, changed / "model.safetensors")  # b unchanged
    size = bench.random_update(base, changed, tmp_path / "moved", seed=3)
    moved = load_file(tmp_path / "moved" / "model.safetensors")
    assert (tmp_path / "moved" / "config.json").is_file()
    assert abs(float((moved["a"] - weights["a"]).norm()) - 0.5 * 12 ** 0.5) < 1e-5
    assert torch.equal(moved["b"], weights["b"])  # a tensor training left alone stays put
    assert not torch.allclose(moved["a"] - weights["a"], torch.full((4, 3), 0.5))  # a random direction, not the change
    assert abs(size - (0.5 * 12 ** 0.5) / (12 + 20) ** 0.5) < 1e-6
    again = tmp_path / "again"
    bench.random_update(base, changed, again, seed=3)
    assert torch.equal(load_file(again / "model.safetensors")["a"], moved["a"])  # seeded
