"""A simulated web shop that emits web-page world-model transitions (accessibility trees and their changes).

:mod:`.shop` is the application (state, pages rendered to accessibility trees, actions);
:mod:`.generate` plays seeded episodes of a noisy scripted agent and builds the splits.
Everything is deterministic in the seed.

>>> from rlvr_world.data.webpage_generator import make_splits
>>> splits = make_splits(seed=0)  # train / heldout_transitions / heldout_pages
"""

from .generate import (
           DEFAULT_EPISODES,
           DEFAULT_HELDOUT_PAGES,
           generate_episodes,
           make_splits,
           play_episode,
)
from .shop import PAGE_TYPES, Shop, ShopState, make_catalog

__all__ = ["DEFAULT_EPISODES", "DEFAULT_HELDOUT_PAGES", "PAGE_TYPES", "Shop", "ShopState", "generate_episodes",
           "make_catalog", "make_splits", "play_episode"]
