import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_webpage_demo_quick_runs_every_stage_and_writes_the_report(tmp_path):
    """The web-page part of `make demo` (data, tiny model, SFT, GRPO, evaluation) with seconds-long stages."""
    subprocess.run([sys.executable, "-m", "rlvr_world.demos.webpage", "--quick", "--output_dir", str(tmp_path)],
                   check=True, capture_output=True, text=True)
    report = json.loads((tmp_path / "webpage" / "report.json").read_text())
    rows = report["rows"]
    assert {(r["model"], r["split"]) for r in rows} == {
        (m, s) for m in ("no-change baseline", "sft", "rlvr") for s in ("heldout_transitions", "heldout_pages")}
    for row in rows:
        assert {"precision", "recall", "f1", "format_error_rate"} <= row.keys()
        assert 0.0 <= row["f1"] <= 100.0 and row["num_transitions"] == 8
    baseline = [r for r in rows if r["model"] == "no-change baseline"]
    assert all(r["format_error_rate"] == 0.0 and 0.0 < r["f1"] < 100.0 for r in baseline)
    assert (tmp_path / "webpage" / "grpo" / "model.safetensors").is_file()
    assert (tmp_path / "webpage" / "curves.png").stat().st_size > 10_000
    report_md = (tmp_path / "webpage" / "report.md").read_text()
    assert "## heldout_pages" in report_md and "RLVR - SFT on heldout_transitions" in report_md
