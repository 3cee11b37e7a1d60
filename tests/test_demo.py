import json
import subprocess
import sys

import pytest

from helpers import REPO


@pytest.mark.slow
def test_demo_quick_runs_every_stage_and_writes_the_report(tmp_path):
    """The whole `make demo` pipeline with seconds-long stages (about 3 minutes on 2 cores)."""
    subprocess.run([sys.executable, str(REPO / "src" / "demo.py"), "--quick", "--output_dir", str(tmp_path)],
                   check=True, capture_output=True, text=True)
    report = json.loads((tmp_path / "textgame" / "report.json").read_text())
    models = {r["model"] for r in report["rows"]}
    assert {"copy baseline", "SFT (demonstrations)", "RLVR (task-specific reward)",
            "control: continued SFT on the demonstrations", "control: MLE on the whole pool",
            "reference: SFT on balanced demonstrations (no RL)"} <= models
    assert {r["split"] for r in report["rows"]} == {"heldout_transitions", "heldout_games"}
    for row in report["rows"]:
        assert {"accuracy_overall", "accuracy_unchanged", "accuracy_changed", "format_error_rate"} <= row.keys()
    assert (tmp_path / "textgame" / "curves.png").stat().st_size > 10_000
    report_md = (tmp_path / "textgame" / "report.md").read_text()
    assert "## heldout_games" in report_md
    # Sampling headroom of the SFT and RLVR models on the held-out transitions (4 samples each).
    headroom = report["sampling_headroom"]
    assert set(headroom) == {"SFT (demonstrations)", "RLVR (task-specific reward)"}
    for h in headroom.values():
        assert h["num_samples"] == 4 and h["overall"]["transitions"] == 8
        assert h["unchanged"]["transitions"] + h["changed"]["transitions"] == 8
        assert 0.0 <= h["overall"]["pass_at_k"] <= 100.0
        assert h["overall"]["best_of_k_reward"] >= 0.0
    assert "## Sampling headroom on heldout_transitions (4 samples per transition" in report_md
    # Why answers are wrong, for every model, and what each fixes or breaks against the SFT model.
    errors, flips = report["error_breakdown"], report["against_sft"]
    assert set(errors) == models - {"copy baseline"}
    assert set(flips) == set(errors) - {"SFT (demonstrations)"}
    for label, breakdown in errors.items():
        row = next(r for r in report["rows"] if r["model"] == label and r["split"] == "heldout_transitions")
        assert sum(k["transitions"] for k in breakdown.values()) == 8
        assert sum(k["format_errors"] for k in breakdown.values()) == round(row["format_error_rate"] * 8 / 100)
        for k in breakdown.values():
            assert k["format_errors"] <= k["wrong"] <= k["transitions"]
    for f in flips.values():
        assert all(f[kind]["fixed"] + f[kind]["broken"] <= errors["SFT (demonstrations)"][kind]["transitions"]
                   for kind in f if kind in errors["SFT (demonstrations)"])
    assert "## Why answers are wrong on heldout_transitions" in report_md
    assert "## Against the SFT model on heldout_transitions" in report_md
    assert "The reference row is the same SFT on balanced demonstrations" in report_md  # tiny has that row
    # Whether each trained model tells unchanged from changed transitions (p of the empty diff).
    separations = report["no_change_separation"]
    assert set(separations) == set(errors)
    for label, sep in separations.items():
        row = next(r for r in report["rows"] if r["model"] == label and r["split"] == "heldout_transitions")
        assert sep["greedy_accuracy"] == pytest.approx(row["accuracy_overall"], abs=0.01)
        assert sep["threshold_accuracy"] >= max(sep["greedy_accuracy"], next(
            r["accuracy_overall"] for r in report["rows"] if r["model"] == "copy baseline"
            and r["split"] == "heldout_transitions")) - 0.01
    assert "## Does the model know when nothing changes? (heldout_transitions)" in report_md
    # A second run finds every stage and every evaluation done: it writes the same rows without generating.
    again = subprocess.run([sys.executable, str(REPO / "src" / "demo.py"), "--quick", "--output_dir", str(tmp_path),
                            "--skip_webpage"], check=True, capture_output=True, text=True)
    assert "generating" not in again.stdout + again.stderr
    assert json.loads((tmp_path / "textgame" / "report.json").read_text())["rows"] == report["rows"]
