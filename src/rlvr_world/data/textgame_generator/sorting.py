"""sort-recycling: put each piece of waste into the bin for its material (containers, open/close)."""

from __future__ import annotations

from .engine import TextGame, Thing, action_rules_text, container_props, item_props, object_rules_text

WASTE = {
    "paper": ("newspaper", "cardboard", "paper bag"),
    "glass": ("glass jar", "wine bottle"),
    "plastic": ("plastic bottle", "yogurt cup"),
    "metal": ("soda can", "tin can"),
}


class SortRecycling(TextGame):
    name = "sort-recycling"
    room = "garage"
    object_rules = object_rules_text(
        """Object: RecyclingBin
Description: an openable container that is not moveable.
Properties:
- accepts: the material the bin is for.""",
        """Object: Waste
Description: a moveable object.
Properties:
- material: what it is made of (paper, glass, plastic or metal).""",
    )
    action_rules = action_rules_text()
    score_rules = (
        "The score is the number of waste objects inside the bin whose accepts equals their material.\n"
        "The game is won and over when every waste object is in its matching bin."
    )

    def setup(self) -> None:
        rng = self.rng
        materials = rng.sample(sorted(WASTE), rng.choice((2, 3)))
        waste = [(m, rng.choice(WASTE[m])) for m in materials]
        if rng.random() < 0.5:  # sometimes a second piece of one material
            m = rng.choice(materials)
            extra = [label for label in WASTE[m] if (m, label) not in waste]
            if extra:
                waste.append((m, rng.choice(extra)))
        rng.shuffle(waste)
        self.bins = [
            self.create(
                f"{m} bin",
                "RecyclingBin",
                container_props(openable=True, is_open=rng.random() < 0.5, moveable=False, accepts=m),
            )
            for m in materials
        ]
        self.waste = [self.create(label, "Waste", item_props(material=m)) for m, label in waste]
        self.task = "Your task is to sort the waste into the matching recycling bins."

    def sorted_right(self, thing: Thing) -> bool:
        return thing.parent in self.bins and thing.parent.props["accepts"] == thing.props["material"]

    def update_score(self) -> None:
        self.score = sum(self.sorted_right(t) for t in self.waste)
        self.over = self.won = self.score == len(self.waste)

    def plan(self):
        for thing in self.waste:
            if not self.sorted_right(thing):
                target = next(b for b in self.bins if b.props["accepts"] == thing.props["material"])
                return self.deliver(thing, target)
        return ("look",)
