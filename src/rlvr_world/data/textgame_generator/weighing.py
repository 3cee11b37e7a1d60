"""weigh-fruit: weigh fruits one by one on a scale (its reading updates at the tick), basket the heaviest."""

from __future__ import annotations

from .engine import TextGame, Thing, action_rules_text, container_props, item_props, object_rules_text

FRUITS = ("apple", "melon", "pear", "orange", "mango", "lemon", "peach")


class WeighFruit(TextGame):
    name = "weigh-fruit"
    room = "pantry"
    object_rules = object_rules_text(
        """Object: Scale
Description: a container with prefix "on" that is not moveable.
Properties:
- reading: per tick, set to the total weight of the objects on it, rounded to 2 decimals (0.0 when empty).""",
        """Object: Basket
Description: an open container that is not moveable.""",
        """Object: Fruit
Description: a moveable object.
Properties:
- weight: in kilograms.""",
    )
    action_rules = action_rules_text()
    score_rules = (
        "The game is over as soon as the basket holds a fruit.\n"
        "It is won, with score 1, if the basket holds only the heaviest fruit; otherwise it is lost with score 0."
    )

    def setup(self) -> None:
        rng = self.rng
        self.scale = self.create("scale", "Scale", container_props(prefix="on", moveable=False, reading=0.0))
        self.basket = self.create("basket", "Basket", container_props(moveable=False))
        labels = rng.sample(FRUITS, rng.choice((2, 3)))
        weights = rng.sample(range(10, 200), len(labels))  # distinct, so there is one heaviest
        self.fruits = [self.create(label, "Fruit", item_props(weight=w / 100)) for label, w in zip(labels, weights)]
        self.heaviest = max(self.fruits, key=lambda t: t.props["weight"])
        self.weighed: set[str] = set()  # the agent's memory, not part of the state
        self.task = "Your task is to find the heaviest fruit and put it in the basket."

    def detail(self, thing: Thing) -> str:
        return f" reading {thing.props['reading']} kg" if thing is self.scale else ""

    def tick(self) -> None:
        self.scale.props["reading"] = round(sum(t.props.get("weight", 0.0) for t in self.scale.children), 2) + 0.0
        if len(self.scale.children) == 1:
            self.weighed.add(self.scale.children[0].label)

    def update_score(self) -> None:
        inside = self.basket.children
        self.over = bool(inside)
        self.won = [t for t in inside] == [self.heaviest]
        self.score = int(self.won)

    def plan(self):
        unweighed = [t for t in self.fruits if t.label not in self.weighed]
        if not unweighed:
            return self.deliver(self.heaviest, self.basket)
        for thing in self.scale.children:
            if thing.label in self.weighed or len(self.scale.children) > 1:
                return ("take", thing)
        if self.scale.children:
            return ("look",)  # wait for the reading
        return self.deliver(unweighed[0], self.scale)
