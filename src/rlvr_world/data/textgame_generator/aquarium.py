"""feed-fish: drop food pellets in the tank; a hungry fish eats one at the tick (the pellet is removed)."""

from __future__ import annotations

from .engine import TextGame, Thing, action_rules_text, container_props, item_props, object_rules_text

FISH = ("goldfish", "guppy", "betta fish", "angelfish")
MAX_HUNGER, HUNGRY = 5, 3


class FeedFish(TextGame):
    name = "feed-fish"
    room = "living room"
    object_rules = object_rules_text(
        """Object: FishTank
Description: an open container that is not moveable.""",
        """Object: FoodJar
Description: a moveable openable container of food pellets.""",
        """Object: FoodPellet
Description: a moveable piece of fish food.""",
        """Object: Fish
Description: lives in the tank; it is not moveable.
Properties:
- hunger: per tick, rises by 1 up to 5. Then, if hunger is 3 or more and a food pellet is in the tank, the first pellet is removed, hunger becomes 0 and mealsEaten rises by 1.""",
    )
    action_rules = action_rules_text()
    score_rules = (
        "The score is the fish's mealsEaten.\n"
        "The game is won and over when mealsEaten reaches the number of meals in the task.\n"
        "The game is lost and over when the tank holds two or more food pellets (overfeeding)."
    )

    def setup(self) -> None:
        rng = self.rng
        self.meals = rng.choice((2, 3))
        self.tank = self.create("fish tank", "FishTank", container_props(moveable=False))
        label = rng.choice(FISH)
        self.fish = self.create(
            label,
            "Fish",
            item_props(moveable=False, hunger=rng.randrange(0, MAX_HUNGER + 1), mealsEaten=0),
            into=self.tank,
        )
        self.jar = self.create("food jar", "FoodJar", container_props(openable=True, is_open=rng.random() < 0.3))
        for _ in range(self.meals + rng.choice((0, 1))):  # sometimes one spare
            self.create("food pellet", "FoodPellet", item_props(), into=self.jar)
        self.task = f"Your task is to feed the {label} {self.meals} meals without overfeeding it."

    def detail(self, thing: Thing) -> str:
        if thing is self.fish:
            return " that looks hungry" if thing.props["hunger"] >= HUNGRY else ""
        return ""

    def pellets_in_tank(self) -> list[Thing]:
        return [t for t in self.tank.children if t.kind == "FoodPellet"]

    def tick(self) -> None:
        props = self.fish.props
        props["hunger"] = min(MAX_HUNGER, props["hunger"] + 1)
        pellets = self.pellets_in_tank()
        if props["hunger"] >= HUNGRY and pellets:
            self.remove(pellets[0])
            props["hunger"] = 0
            props["mealsEaten"] += 1

    def update_score(self) -> None:
        self.score = self.fish.props["mealsEaten"]
        self.won = self.score >= self.meals
        self.over = self.won or len(self.pellets_in_tank()) >= 2

    def plan(self):
        if self.pellets_in_tank():
            return ("look",)  # one pellet at a time: let the fish eat it
        pellets = [t for t in self.things() if t.kind == "FoodPellet"]
        held = [t for t in pellets if t.parent is self.agent]
        if self.fish.props["hunger"] < HUNGRY - 1 and not held:
            return self.fetch(pellets[0]) if pellets else ("look",)  # get ready while it is not hungry
        return self.deliver((held or pellets)[0], self.tank) if pellets else ("look",)
