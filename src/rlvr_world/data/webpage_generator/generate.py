"""Episodes of a noisy scripted agent in the simulated shop, one transition per action, and the splits.

Each episode draws an objective (buy a product, look up a price, remove a product from the cart,
change the account's name or email), a starting cart and an account; the agent follows a plan
toward the objective and, with probability ``noise``, tries any other action on the page instead.
Every record holds the inputs of the world model (URL, objective, previous action, the rendered
tree, the action) and the gold changes: the difference between the trees before and after.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from rlvr_world.text.webpage import render_tree, tree_changes

from .shop import (
    ACCOUNT_LINK,
    ADD_BUTTON,
    CART_LINK,
    CART_ROW,
    CHECKOUT,
    COLORS,
    EMAIL_BOX,
    FEATURED_LINK,
    MAX_QUANTITY,
    NAME_BOX,
    NOUNS,
    NUM_FEATURED,
    QUANTITY,
    RESULT_LINK,
    SAVE_BUTTON,
    SEARCH_BOX,
    Shop,
    ShopState,
    make_catalog,
)

DEFAULT_EPISODES = 600
DEFAULT_HELDOUT_PAGES = ("account",)
MAX_STEPS = 10
NAMES = ("Ann", "Bo", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana")


def episode_rng(seed: int, episode: int) -> random.Random:
    # A string seed is hashed with SHA-512: stable across runs and PYTHONHASHSEED.
    return random.Random(f"webpage/{seed}/{episode}")


def draw_objective(rng: random.Random, shop: Shop) -> tuple:
    kind = rng.choices(("buy", "price", "remove", "account"), weights=(4, 2, 2, 1))[0]
    if kind == "remove" and shop.state.cart:
        return ("remove", rng.choice(sorted(shop.state.cart)))
    if kind == "account":
        field = rng.choice(("name", "email"))
        name = rng.choice(NAMES)
        return (field, name if field == "name" else f"{name.lower()}@mail.test")
    p = rng.randrange(len(shop.catalog))
    return ("buy", p, rng.randint(1, MAX_QUANTITY)) if kind != "price" else ("price", p)


def objective_text(objective: tuple, shop: Shop) -> str:
    kind = objective[0]
    if kind == "buy":
        return f"Buy {objective[2]} {shop.catalog[objective[1]].name}"
    if kind == "price":
        return f"Find the price of {shop.catalog[objective[1]].name}"
    if kind == "remove":
        return f"Remove {shop.catalog[objective[1]].name} from the cart"
    return f"Change the account {kind} to {objective[1]}"


def objective_done(objective: tuple, shop: Shop) -> bool:
    s, kind = shop.state, objective[0]
    if kind == "buy":
        return s.page == "order" or (s.page == "product" and s.product == objective[1] and bool(s.message)
                                      and not s.message.startswith("Added"))
    if kind == "price":
        return s.page == "product" and s.product == objective[1]
    if kind == "remove":
        return objective[1] not in s.cart
    return getattr(s, kind) == objective[1]


def _go_to_product(p: int, shop: Shop, rng: random.Random) -> str:
    s = shop.state
    if s.page == "search" and p in shop.results(s.query):
        return f"click [{RESULT_LINK + p}]"
    if s.page == "home" and p < NUM_FEATURED:
        return f"click [{FEATURED_LINK + p}]"
    name = shop.catalog[p].name.lower()
    word = rng.choice((name.split()[1], name))  # the noun, or the whole name
    return f"type [{SEARCH_BOX}] [{word}]"


def planned_action(objective: tuple, shop: Shop, rng: random.Random) -> str:
    """The next step of the plan toward the objective."""
    s, kind = shop.state, objective[0]
    if kind == "buy":
        p, q = objective[1], objective[2]
        if s.cart.get(p, 0) >= q:
            return f"click [{CHECKOUT}]" if s.page == "cart" else f"click [{CART_LINK}]"
        if s.page == "product" and s.product == p:
            return f"select [{QUANTITY}] [{q}]" if s.quantity != q else f"click [{ADD_BUTTON}]"
        return _go_to_product(p, shop, rng)
    if kind == "price":
        return _go_to_product(objective[1], shop, rng)
    if kind == "remove":
        return f"click [{CART_ROW + 2 * objective[1] + 1}]" if s.page == "cart" else f"click [{CART_LINK}]"
    if s.page != "account":
        return f"click [{ACCOUNT_LINK}]"
    box, draft = (NAME_BOX, s.draft_name) if kind == "name" else (EMAIL_BOX, s.draft_email)
    if draft != objective[1]:
        return f"type [{box}] [{objective[1]}]" + rng.choice(("", " [0]"))
    return f"click [{SAVE_BUTTON}]"


def random_action(shop: Shop, rng: random.Random) -> str:
    """Anything else the agent might try: a click anywhere, a search, a quantity, going back."""
    roll = rng.random()
    if roll < 0.15:
        word = rng.choice((*COLORS, *NOUNS, "Shoes", "Gift")).lower()
        return f"type [{SEARCH_BOX}] [{word}]" + rng.choice(("", "", " [0]"))
    if roll < 0.25 and shop.state.page == "account":
        return f"type [{rng.choice((NAME_BOX, EMAIL_BOX))}] [{rng.choice(NAMES).lower()}]"
    return rng.choice(shop.actions())


def start_state(rng: random.Random, shop_catalog) -> ShopState:
    name = rng.choice(NAMES)
    state = ShopState(name=name, email=f"{name.lower()}@mail.test", draft_name=name,
                      draft_email=f"{name.lower()}@mail.test", stock=[p.stock for p in shop_catalog])
    for p in rng.sample(range(len(shop_catalog)), rng.choice((0, 0, 1, 2))):
        state.cart[p] = rng.randint(1, 2)
    return state


def play_episode(catalog, rng: random.Random, episode: int = 0, noise: float = 0.3) -> list[dict]:
    shop = Shop(catalog, start_state(rng, catalog))
    objective = draw_objective(rng, shop)
    goal = objective_text(objective, shop)
    previous, records = "None", []
    for step in range(MAX_STEPS):
        if objective_done(objective, shop):
            break
        action = random_action(shop, rng) if rng.random() < noise else planned_action(objective, shop, rng)
        before, url, page = shop.tree(), shop.url, shop.state.page
        shop.act(action)
        after = shop.tree()
        records.append({
            "url": url,
            "objective": goal,
            "previous_action": previous,
            "observation": render_tree(before),
            "action": action,
            "changes": tree_changes(before, after),
            "page_type": page,
            "next_page_type": shop.state.page,
            "action_type": action.split(" ", 1)[0],
            "episode": episode,
            "step": step,
        })
        previous = action
    return records


def generate_episodes(episodes: Iterable[int], seed: int = 0, noise: float = 0.3) -> list[list[dict]]:
    catalog = make_catalog(seed)
    return [play_episode(catalog, episode_rng(seed, e), e, noise) for e in episodes]


def make_splits(seed: int = 0, episodes: int = DEFAULT_EPISODES, heldout_pages: Iterable[str] = DEFAULT_HELDOUT_PAGES,
                heldout_fraction: float = 0.15, noise: float = 0.3) -> dict[str, list[dict]]:
    """``train``; ``heldout_transitions``: unseen episodes' transitions whose prompt (URL, objective, previous
    action, tree, action) never occurs in train; ``heldout_pages``: every transition from or to a page type
    never trained on (the account page by default)."""
    heldout_pages = set(heldout_pages)
    order = list(range(episodes))
    random.Random(f"webpage-split/{seed}").shuffle(order)
    heldout_episodes = set(order[: max(1, round(heldout_fraction * episodes))]) if heldout_fraction > 0 else set()
    splits: dict[str, list[dict]] = {"train": [], "heldout_transitions": [], "heldout_pages": []}
    for index, episode in enumerate(generate_episodes(range(episodes), seed, noise)):
        for record in episode:
            if record["page_type"] in heldout_pages or record["next_page_type"] in heldout_pages:
                splits["heldout_pages"].append(record)
            else:
                splits["heldout_transitions" if index in heldout_episodes else "train"].append(record)
    seen = {input_key(r) for r in splits["train"]}
    splits["heldout_transitions"] = [r for r in splits["heldout_transitions"] if input_key(r) not in seen]
    return splits


def input_key(record: dict) -> tuple:
    return tuple(record[k] for k in ("url", "objective", "previous_action", "observation", "action"))
