"""Shared test fixtures: paths of the real ByteSized32 files (read-only)."""

from pathlib import Path

from rlvr_world.data.textgame import DEFAULT_BYTESIZED32_DIR

REAL_TEST = DEFAULT_BYTESIZED32_DIR / "test.jsonl.gz"
REAL_RULES = DEFAULT_BYTESIZED32_DIR / "rules"
REAL_EXAMPLES = DEFAULT_BYTESIZED32_DIR / "examples.json"
REPO = Path(__file__).resolve().parents[1]
