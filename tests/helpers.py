"""Shared test fixtures: paths of the real ByteSized32 files (read-only)."""

from pathlib import Path

from rlvr_world.data.textgame import DEFAULT_BYTESIZED32_DIR

REAL_TEST = DEFAULT_BYTESIZED32_DIR / "test.jsonl.gz"
REAL_RULES = DEFAULT_BYTESIZED32_DIR / "rules"
REAL_EXAMPLES = DEFAULT_BYTESIZED32_DIR / "examples.json"
REPO = Path(__file__).resolve().parents[1]


def entry(name: str):
    """Import an entry script of `src/` (e.g. `grpo`) as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"entry_{name}", REPO / "src" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
