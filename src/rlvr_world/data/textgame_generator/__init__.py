"""Procedural text games that emit transitions in the GPT-simulator (ByteSized32) state-prediction schema.

Each game type is a small module built on :mod:`.engine`; a noisy scripted agent plays seeded
episodes, and every step becomes one record ``{current_state, action_state, tick_state,
current_score_state, next_score_state, game, state_id}``. Everything is deterministic in the seed.

>>> from rlvr_world.data.textgame_generator import make_splits
>>> splits = make_splits(seed=0)  # train / heldout_transitions / heldout_games
"""

from .engine import TextGame, Thing
from .generate import (
    DEFAULT_EPISODES_PER_GAME,
    DEFAULT_HELDOUT_GAMES,
    EPISODE_STRIDE,
    generate_episodes,
    generate_transitions,
    make_splits,
    play_episode,
    rules,
)
from .registry import GAMES

__all__ = [
    "DEFAULT_EPISODES_PER_GAME",
    "DEFAULT_HELDOUT_GAMES",
    "EPISODE_STRIDE",
    "GAMES",
    "TextGame",
    "Thing",
    "generate_episodes",
    "generate_transitions",
    "make_splits",
    "play_episode",
    "rules",
]
