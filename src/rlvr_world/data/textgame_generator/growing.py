"""grow-bean: plant a seed in a flower pot and keep it watered; it grows by ticks and finally bears a pod."""

from __future__ import annotations

from .engine import TextGame, Thing, action_rules_text, container_props, item_props, object_rules_text

CROPS = ("bean", "pea")
STAGES = ("seed", "sprout", "vine", "flowering")  # growth 0-1, 2-3, 4-5, 6+
MAX_WATER = 4


class GrowBean(TextGame):
    name = "grow-bean"
    room = "greenhouse"
    object_rules = object_rules_text(
        """Object: FlowerPot
Description: an open container with soil that is not moveable.""",
        """Object: WateringCan
Description: a moveable object.
Properties:
- waterPerUse: water added to a plant by one watering.""",
        """Object: Plant
Description: a moveable plant that starts as a seed.
Properties:
- water: per tick, if above 0 it falls by 1, and then if the plant is in the flower pot its growth rises by 1.
- growth: sets stage: 0-1 seed, 2-3 sprout, 4-5 vine, 6 or more flowering.
- isDead: a dead plant never changes again.
- When the plant first becomes flowering, a new pod (type Pod, named after the crop, e.g. "bean pod") is created in the plant's container with the next free uuid.""",
    )
    action_rules = action_rules_text("""
water PLANT:
Rules:
1. The watering can must be in the inventory and the target must be a plant that is not dead.
2. The plant's water rises by waterPerUse; if it goes above 4 the plant drowns and isDead becomes true.
""")
    score_rules = (
        "The score is the plant stage's index (seed 0, sprout 1, vine 2, flowering 3).\n"
        "The game is won and over when a pod exists.\n"
        "The game is lost and over when the plant is dead."
    )
    extra_verbs = ("water",)

    def setup(self) -> None:
        rng = self.rng
        self.crop = rng.choice(CROPS)
        self.flower_pot = self.create("flower pot", "FlowerPot", container_props(moveable=False))
        self.can = self.create("watering can", "WateringCan", item_props(waterPerUse=rng.choice((1, 2))))
        self.plant = self.create(
            f"{self.crop} plant",
            "Plant",
            item_props(stage="seed", growth=0, water=0, isDead=False),
            into=self.flower_pot if rng.random() < 0.3 else self.world,
        )
        self.pod: Thing | None = None
        self.task = f"Your task is to grow the {self.crop} plant until it bears a {self.crop} pod."

    def detail(self, thing: Thing) -> str:
        if thing is self.plant:
            return " that is dead" if thing.props["isDead"] else f" ({thing.props['stage']})"
        return ""

    def do_water(self, target: Thing) -> str:
        if self.can.parent is not self.agent:
            return "You need to hold the watering can."
        if target is not self.plant or not self.visible(target):
            return f"You can't water the {target.label}."
        if target.props["isDead"]:
            return f"The {target.label} is dead."
        target.props["water"] += self.can.props["waterPerUse"]
        if target.props["water"] > MAX_WATER:
            target.props["isDead"] = True
            return f"You water the {target.label} too much and it drowns."
        return f"You water the {target.label}."

    def tick(self) -> None:
        props = self.plant.props
        if props["isDead"] or props["water"] == 0:
            return
        props["water"] -= 1
        if self.plant.parent is not self.flower_pot:
            return
        props["growth"] += 1
        props["stage"] = STAGES[min(props["growth"] // 2, len(STAGES) - 1)]
        if props["stage"] == "flowering" and self.pod is None:
            self.pod = self.create(f"{self.crop} pod", "Pod", item_props(), into=self.flower_pot)

    def update_score(self) -> None:
        self.score = STAGES.index(self.plant.props["stage"])
        self.won = self.pod is not None
        self.over = self.won or self.plant.props["isDead"]

    def plan(self):
        if self.plant.parent is not self.flower_pot:
            return self.deliver(self.plant, self.flower_pot)
        if self.can.parent is not self.agent:
            return ("take", self.can)
        if self.plant.props["water"] + self.can.props["waterPerUse"] <= 2:
            return ("water", self.plant)
        return ("look",)  # wait while it grows
