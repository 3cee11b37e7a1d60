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
