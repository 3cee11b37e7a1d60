"""Dataset builders (text games, web pages, PushT, RT-1) and a loader for what they write."""

from __future__ import annotations

from pathlib import Path

import datasets


def load_dataset_dir(path: str | Path, split: str | None = None):
    """Load a dataset that ``make_dataset.py`` wrote (``save_to_disk`` layout or parquet files).

    A name that is not a local directory is treated as a Hub dataset id.
    """
    path = Path(path)
    if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
        loaded = datasets.load_from_disk(str(path))
    elif path.is_dir():
        files = sorted((path / "data").glob("*.parquet")) or sorted(path.glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"{path}: no dataset found (neither save_to_disk files nor parquet files)")
        data_files = {}
        for file in files:
            data_files.setdefault(file.name.split("-")[0].removesuffix(".parquet"), []).append(str(file))
        loaded = datasets.load_dataset("parquet", data_files=data_files)
    else:
        loaded = datasets.load_dataset(str(path))
    if split is None:
        return loaded
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise KeyError(f"{path}: no split '{split}' (splits: {', '.join(loaded)})")
        return loaded[split]
    return loaded
