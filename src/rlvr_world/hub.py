"""Model and dataset cards from ``hub_cards/`` templates, and Hub push helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

CARDS_DIR = Path(__file__).resolve().parents[2] / "hub_cards"


def _template(name: str) -> str:
    path = CARDS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"card template {path} not found: install rlvr-world from a source checkout (pip install -e .)"
        )
    return str(path)


def dataset_card(template: str, card_data: dict[str, Any], **fields: Any) -> DatasetCard:
    """Render ``hub_cards/<template>`` (Jinja) into a dataset card with YAML metadata."""
    return DatasetCard.from_template(DatasetCardData(**card_data), template_path=_template(template), **fields)


def model_card(template: str, card_data: dict[str, Any], **fields: Any) -> ModelCard:
    """Render ``hub_cards/<template>`` (Jinja) into a model card with YAML metadata."""
    return ModelCard.from_template(ModelCardData(**card_data), template_path=_template(template), **fields)
