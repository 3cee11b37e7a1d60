"""Episodes from the noisy scripted agent, flattened into GPT-simulator transitions, and the splits."""

from __future__ import annotations

import random
from collections.abc import Iterable

from .engine import TextGame
from .registry import GAMES

DEFAULT_EPISODES_PER_GAME = 30
DEFAULT_HELDOUT_GAMES = ("freeze-water", "feed-fish")
# state_id = episode * EPISODE_STRIDE + step, so the episode of any record is state_id // EPISODE_STRIDE.
EPISODE_STRIDE = 100


def episode_rng(seed: int, game: str, episode: int) -> random.Random:
    # A string seed is hashed with SHA-512: stable across runs and PYTHONHASHSEED.
    return random.Random(f"textgame/{seed}/{game}/{episode}")


def play_episode(game_cls: type[TextGame], rng: random.Random, episode: int = 0) -> list[dict]:
    """One episode: until the game is over or ``max_steps`` actions, one transition per action."""
    game = game_cls(rng)
    current, current_score = game.state(), game.score_state()
    records = []
    for step in range(game.max_steps):
        game.act(game.choose_action())
        action_state = game.state()
        game.tick()
        game.update_score()
        tick_state, next_score = game.state(), game.score_state()
        records.append(
            {
                "current_state": current,
                "action_state": action_state,
                "tick_state": tick_state,
                "current_score_state": current_score,
                "next_score_state": next_score,
                "game": game_cls.name,
                "state_id": episode * EPISODE_STRIDE + step,
            }
        )
        current, current_score = tick_state, next_score
        if game.over:
            break
    return records


def generate_episodes(game: str, episodes: Iterable[int], seed: int = 0) -> list[list[dict]]:
    game_cls = GAMES[game]
    return [play_episode(game_cls, episode_rng(seed, game, e), e) for e in episodes]


def _check_games(games: Iterable[str]) -> list[str]:
    games = list(games)
    unknown = [g for g in games if g not in GAMES]
    if unknown:
        raise KeyError(f"unknown games {unknown}; known: {sorted(GAMES)}")
    return games


def generate_transitions(
    games: list[str] | None = None, episodes_per_game: int = DEFAULT_EPISODES_PER_GAME, seed: int = 0
) -> list[dict]:
    """All transitions of ``episodes_per_game`` episodes of each game, deterministic in ``seed``."""
    records = []
    for game in _check_games(games if games is not None else GAMES):
        for episode in generate_episodes(game, range(episodes_per_game), seed):
            records.extend(episode)
    return records


def rules() -> dict[str, dict[str, str]]:
    """The human-readable rules of every game, in the layout of the reference's rule files."""
    return {
        "object_rules": {name: game.object_rules for name, game in GAMES.items()},
        "action_rules": {name: game.action_rules for name, game in GAMES.items()},
        "score_rules": {name: game.score_rules for name, game in GAMES.items()},
    }


def make_splits(
    seed: int = 0,
    heldout_games: Iterable[str] = DEFAULT_HELDOUT_GAMES,
    episodes_per_game: int = DEFAULT_EPISODES_PER_GAME,
    heldout_fraction: float = 0.15,
) -> dict[str, list[dict]]:
    """``train``, ``heldout_transitions`` (unseen episodes of the training games; whole episodes, so
    no state leaks) and ``heldout_games`` (every episode of game types never trained on)."""
    heldout_games = _check_games(heldout_games)
    splits: dict[str, list[dict]] = {"train": [], "heldout_transitions": [], "heldout_games": []}
    for game in GAMES:
        episodes = generate_episodes(game, range(episodes_per_game), seed)
        if game in heldout_games:
            splits["heldout_games"].extend(r for episode in episodes for r in episode)
            continue
        order = list(range(episodes_per_game))
        random.Random(f"textgame-split/{seed}/{game}").shuffle(order)
        # At least one held-out episode when asked for any, and at least one left to train on.
        n_heldout = max(1, round(heldout_fraction * episodes_per_game)) if heldout_fraction > 0 else 0
        n_heldout = min(n_heldout, episodes_per_game - 1)
        heldout = set(order[:n_heldout])
        for index, episode in enumerate(episodes):
            splits["heldout_transitions" if index in heldout else "train"].extend(episode)
    return splits
