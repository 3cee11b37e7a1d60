"""Recipe parsing and checkpoint discovery for the training entry points.

`python src/grpo.py RECIPE.yaml --key value ...`: the YAML file is the first positional argument
(TRL's `TrlParser` only knows `--config FILE`, so argv is rewritten), command-line `--key value`
pairs override the recipe, and a key that no dataclass knows fails with a clear message.
`bf16: auto` (recipe or command line) becomes true where the device computes bf16 natively (a CUDA GPU
that supports it, a CPU with AVX512-BF16 or AMX) and false elsewhere, where autocast would be emulated.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence

import yaml

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


class RecipeError(ValueError):
    """A recipe or command line that cannot be parsed (unknown key, missing file)."""


def rewrite_argv(argv: Sequence[str]) -> list[str]:
    """`[RECIPE.yaml, --k, v, ...]` -> `[--config, RECIPE.yaml, --k, v, ...]`.

    Anything that does not start with a YAML path is returned unchanged (so `--config X` and plain
    `--key value` command lines still work).
    """
    argv = list(argv)
    if argv and not argv[0].startswith("-") and argv[0].endswith((".yaml", ".yml")):
        if "--config" in argv:
            raise RecipeError("give the recipe either as the first argument or with --config, not both")
        return ["--config", argv[0], *argv[1:]]
    return argv


def _known_fields(dataclass_types: Iterable[type]) -> set[str]:
    names: set[str] = set()
    for dc in dataclass_types:
        names.update(dc.__dataclass_fields__)
    return names


def suggest(key: str, known: Iterable[str]) -> str:
    """` (did you mean 'a', 'b'?)` for the known keys closest to `key`, or ''."""
    close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def load_recipe(config_path: str) -> dict:
    """A recipe YAML file as a mapping (RecipeError if missing or not a mapping)."""
    if not os.path.isfile(config_path):
        raise RecipeError(f"recipe not found: {config_path}")
    with open(config_path) as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict):
        raise RecipeError(f"recipe {config_path} must be a YAML mapping, got {type(config).__name__}")
    return config


def _check_recipe_keys(config_path: str, dataclass_types: Sequence[type]) -> None:
    config = load_recipe(config_path)
    known = _known_fields(dataclass_types) | {"env"}
    unknown = [k for k in config if k not in known]
    if unknown:
        details = "; ".join(f"{k!r}{suggest(k, known)}" for k in unknown)
        raise RecipeError(f"unknown key(s) in recipe {config_path}: {details}")


def _check_cli_keys(args: Sequence[str], dataclass_types: Sequence[type]) -> None:
    known = _known_fields(dataclass_types)
    known_flags = known | {k.replace("_", "-") for k in known} | {f"no_{k}" for k in known}
    unknown = []
    for token in args:
        if token.startswith("--"):
            name = token[2:].split("=", 1)[0]
            if name not in known_flags:
                unknown.append(name)
    if unknown:
        details = "; ".join(f"--{k}{suggest(k.replace('-', '_'), known)}" for k in unknown)
        raise RecipeError(f"unknown command-line option(s): {details}")


def _flag_value(args: Sequence[str], name: str) -> str | None:
    """The value of the last `--name value` / `--name=value` in `args`, or None."""
    value = None
    for i, token in enumerate(args):
        if token == f"--{name}" and i + 1 < len(args):
            value = args[i + 1]
        elif token.startswith(f"--{name}="):
            value = token.split("=", 1)[1]
    return value


def resolve_auto_bf16(args: Sequence[str]) -> list[str]:
    """Turn `bf16: auto` (in the recipe or as `--bf16 auto`) into `--bf16 true|false` for this machine.

    The resolved flag goes last on the command line, where it overrides the recipe; `use_cpu` is read from
    the command line first, then the recipe (a CPU with AVX512-BF16 trains 1.5-2.4x faster under bf16
    autocast, one without it many times slower).
    """
    from rlvr_world.training.precision import resolve_mixed_precision

    args = list(args)
    config = load_recipe(args[args.index("--config") + 1]) if "--config" in args else {}
    cli_bf16 = _flag_value(args, "bf16")
    if str(cli_bf16 if cli_bf16 is not None else config.get("bf16")).lower() != "auto":
        return args
    use_cpu = _flag_value(args, "use_cpu")
    use_cpu = str(use_cpu).lower() in ("true", "1", "yes") if use_cpu is not None else bool(config.get("use_cpu"))
    resolved = "true" if resolve_mixed_precision("auto", use_cpu=use_cpu) == "bf16" else "false"
    kept, skip = [], False
    for i, token in enumerate(args):  # drop `--bf16 auto` / `--bf16=auto`: argparse would reject "auto"
        if skip:
            skip = False
        elif token == "--bf16" and i + 1 < len(args) and args[i + 1].lower() == "auto":
            skip = True
        elif token.lower() != "--bf16=auto":
            kept.append(token)
    return [*kept, "--bf16", resolved]


def parse_recipe(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple:
    """Parse `[RECIPE.yaml] [--key value ...]` into one instance per dataclass type.

    Raises `RecipeError` on unknown keys in the YAML or on the command line.
    """
    from trl import TrlParser

    args = rewrite_argv(sys.argv[1:] if argv is None else argv)
    rest = list(args)
    if "--config" in rest:
        i = rest.index("--config")
        if i + 1 >= len(rest):
            raise RecipeError("--config needs a path")
        _check_recipe_keys(rest[i + 1], dataclass_types)
        del rest[i : i + 2]
    _check_cli_keys(rest, dataclass_types)
    parser = TrlParser(list(dataclass_types))
    try:
        return tuple(parser.parse_args_and_config(args=resolve_auto_bf16(args)))
    except SystemExit as err:  # argparse prints its own message (bad value type, ...)
        raise RecipeError(f"could not parse the command line {args}") from err


def run_cli(main, dataclass_types: Sequence[type], argv: Sequence[str] | None = None):
    """Parse, turning a bad recipe (unknown key, invalid value) into a one-line message and exit
    status 2, then call `main(*parsed)`."""
    try:
        parsed = parse_recipe(dataclass_types, argv)
    except ValueError as err:  # RecipeError, or a config's own validation
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return main(*parsed)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def is_complete_checkpoint(path: str) -> bool:
    """A checkpoint is complete once `trainer_state.json` (written last by the Trainer) parses and
    records the step its folder is named after."""
    match = _CHECKPOINT_RE.match(os.path.basename(os.path.normpath(path)))
    state_file = os.path.join(path, "trainer_state.json")
    if match is None or not os.path.isfile(state_file):
        return False
    try:
        with open(state_file) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return False
    return int(state.get("global_step", -1)) == int(match.group(1))


def find_last_checkpoint(output_dir: str | None) -> str | None:
    """The complete `checkpoint-N` folder of `output_dir` with the largest N, or None.

    Folders left half-written by a killed run (no valid `trainer_state.json`) are skipped.
    """
    if not output_dir or not os.path.isdir(output_dir):
        return None
    candidates = []
    for name in os.listdir(output_dir):
        match = _CHECKPOINT_RE.match(name)
        path = os.path.join(output_dir, name)
        if match and os.path.isdir(path):
            candidates.append((int(match.group(1)), path))
    for _, path in sorted(candidates, reverse=True):
        if is_complete_checkpoint(path):
            return path
    return None


def resolve_resume(training_args, auto_resume: bool = True) -> str | None:
    """The checkpoint to resume from: an explicit `resume_from_checkpoint` wins (the strings
    'none'/'false' disable resuming); otherwise, with `auto_resume`, the last complete checkpoint."""
    explicit = getattr(training_args, "resume_from_checkpoint", None)
    if isinstance(explicit, str) and explicit.lower() in ("none", "false", "no"):
        return None
    if explicit:
        if isinstance(explicit, str) and explicit.lower() in ("true", "last", "auto"):
            return find_last_checkpoint(training_args.output_dir)
        return explicit
    if auto_resume:
        return find_last_checkpoint(training_args.output_dir)
    return None
