import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_video_demo_quick_runs_every_stage_and_writes_the_report(tmp_path):
    """`make demo-video` with seconds-long stages on the untrained smoke models: GRPO, the equal-time MLE
    control, evaluation of base / RLVR / control / copy, curves, pictures and both reports."""
    out = tmp_path / "video"
    subprocess.run([sys.executable, "-m", "rlvr_world.demos.video", "--quick", "--modes", "single_step",
                    "--output_dir", str(out)], check=True, capture_output=True, text=True)
    report = json.loads((out / "report.json").read_text())
    rows = {r["model"]: r for r in report["rows"]}
    assert set(rows) == {"copy last frame", "base", "RLVR", "continued MLE"}
    for r in rows.values():
        assert set(r) == {"model", "task", "mse", "mae", "psnr", "ssim", "lpips", "repetition_rate"}
        assert r["task"] == "video_single_step" and 0.0 <= r["mse"] < 1.0 and r["mae"] >= 0.0
    assert (out / "grpo_single_step" / "model.safetensors").is_file()
    assert (out / "mle_single_step" / "model.safetensors").is_file()
    assert report["mle_curves"]["single_step"][0]["step"] == 0
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
            r("base", "video_multi_step", 0.02, 0.1, 4e-3, 0.95), r("RLVR", "video_multi_step", 0.02, 0.1, 5e-3, 0.5)]
    lines = findings(rows, {"single_step": 100, "multi_step": 50})
    assert "0.0400 -> 0.0300" in lines[0] and "100 GRPO steps: +25.0%" in lines[0] and lines[0].endswith("better): met")
    assert "0.0380 (+5.0% relative to base)" in lines[1]
    assert "0.950 -> 0.500 (lower)" in lines[2] and "(WORSE)" in lines[2]  # MSE rose


def test_one_grpo_step_count_or_one_per_mode():
    from rlvr_world.demos.video import main

    with pytest.raises(SystemExit):
        main(["--modes", "single_step", "--grpo_steps", "10", "20"])
