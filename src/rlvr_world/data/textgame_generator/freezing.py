"""freeze-water: put a tray of water in the freezer and keep the door shut until the water turns solid."""

from __future__ import annotations

from .engine import ROOM_TEMPERATURE, TextGame, Thing, action_rules_text, container_props, item_props, object_rules_text

FREEZER_TEMPERATURE = -10
WARMING = 2


class FreezeWater(TextGame):
    name = "freeze-water"
    room = "kitchen"
    object_rules = object_rules_text(
        """Object: Freezer
Description: an openable container that is not moveable.
Properties:
- coolPerTick: how fast it cools the water inside while closed.""",
        """Object: IceTray
Description: a moveable open container.""",
        """Object: Water
Description: a liquid in the tray; it is not moveable.
Properties:
- temperature: in degrees. Per tick, if the water is inside the closed freezer it falls by coolPerTick (not below -10); otherwise it rises by 2 (not above 20).
- state: "solid" when the temperature is 0 or below, else "liquid" (updated in the same tick).""",
    )
    action_rules = action_rules_text()
    score_rules = "The game is won and over, with score 1, when the water is solid. Otherwise the score is 0."

    def setup(self) -> None:
        rng = self.rng
        self.freezer = self.create(
            "freezer",
            "Freezer",
            container_props(openable=True, is_open=False, moveable=False, coolPerTick=rng.choice((3, 4, 5, 6))),
        )
        if rng.random() < 0.4:
            self.create(rng.choice(("glass", "jug")), "Container", container_props())
        self.tray = self.create("ice tray", "IceTray", container_props())
        self.water = self.create(
            "water",
            "Water",
            item_props(moveable=False, temperature=rng.choice((12, 20, 20, 20)), state="liquid"),
            into=self.tray,
        )
        self.task = "Your task is to freeze the water into ice."

    def detail(self, thing: Thing) -> str:
        return f" ({thing.props['state']})" if thing is self.water else ""

    def tick(self) -> None:
        props = self.water.props
        if self.inside(self.water, self.freezer) and not self.freezer.props["isOpen"]:
            props["temperature"] = max(FREEZER_TEMPERATURE, props["temperature"] - self.freezer.props["coolPerTick"])
        else:
            props["temperature"] = min(ROOM_TEMPERATURE, props["temperature"] + WARMING)
        props["state"] = "solid" if props["temperature"] <= 0 else "liquid"

    def update_score(self) -> None:
        self.over = self.won = self.water.props["state"] == "solid"
        self.score = int(self.won)

    def plan(self):
        if self.tray.parent is not self.freezer:
            return self.deliver(self.tray, self.freezer)
        if self.freezer.props["isOpen"]:
            return ("close", self.freezer)
        return ("look",)  # wait for it to freeze
