"""`make demo`: the embedded CPU-scale run of the text-game world-model pipeline.

Builds the data (our generated games and the real ByteSized32 test set), evaluates the trivial
baselines on every split, and writes ``runs/demo/textgame/report.md`` and ``report.json``.
"""

import argparse
import json
from pathlib import Path

from rlvr_world.data import load_dataset_dir
from rlvr_world.data.textgame import DEFAULT_BYTESIZED32_DIR
from rlvr_world.data.textgame import main as make_textgame
from rlvr_world.evaluation.textgame import evaluate


def build_data(out: Path) -> dict[str, Path]:
    """Generated games (short prompts for tiny models) and, when present, the real test set."""
    sets = {}
    generated = out / "data" / "textgame_generated"
    if not (generated / "dataset_dict.json").exists():
        make_textgame(["--source", "generated", "--output_dir", str(generated), "--no_rules", "--no_examples",
                       "--state_format", "json"])
    sets["generated"] = generated
    if (DEFAULT_BYTESIZED32_DIR / "test.jsonl.gz").exists():
        real = out / "data" / "textgame_bytesized32"
        if not (real / "dataset_dict.json").exists():
            make_textgame(["--source", "jsonl", "--output_dir", str(real)])
        sets["bytesized32"] = real
    return sets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output_dir", default="runs/demo")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    report_dir = out / "textgame"
    rows = []
    for name, path in build_data(out).items():
        splits = load_dataset_dir(path)
        for split, dataset in splits.items():
            for predictor in ("copy", "oracle"):
                metrics = evaluate(dataset, predictor, report_dir / "eval" / f"{name}_{split}_{predictor}",
                                   dataset_name=f"{name} [{split}]")
                rows.append({"model": f"{predictor} baseline", "data": name, "split": split,
                             **{k: metrics[k] for k in ("accuracy_overall", "accuracy_unchanged",
                                                        "accuracy_changed", "format_error_rate",
                                                        "num_transitions")}})
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.json").write_text(json.dumps({"rows": rows}, indent=2))
    lines = ["# Text-game world model: demo report", "",
             "| model | data | split | transitions | all | unchanged | changed | format errors |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['data']} | {r['split']} | {r['num_transitions']} | {r['accuracy_overall']} | "
              f"{r['accuracy_unchanged']} | {r['accuracy_changed']} | {r['format_error_rate']} |" for r in rows]
    (report_dir / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nreport: {report_dir / 'report.md'}")


if __name__ == "__main__":
    main()
