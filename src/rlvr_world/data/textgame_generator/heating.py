"""heat-soup: heat a pot of soup on a stove to serving temperature without burning it."""

from __future__ import annotations

from .engine import ROOM_TEMPERATURE, TextGame, Thing, action_rules_text, container_props, item_props, object_rules_text

SOUPS = ("tomato soup", "pea soup", "lentil soup", "onion soup", "pumpkin soup")
HOT, BURNT = 60, 100


class HeatSoup(TextGame):
    name = "heat-soup"
    room = "kitchen"
    object_rules = object_rules_text(
        """Object: Stove
Description: a container with prefix "on" that is not moveable.
Properties:
- isOn: whether the stove heats.
- heatPerTick: degrees added per tick to the soup of a pot on the stove while the stove is on.""",
        """Object: Pot
Description: a moveable open container holding the soup.""",
        """Object: Soup
Description: a liquid in the pot; it is not moveable.
Properties:
- temperature: in degrees. Per tick, it rises by heatPerTick if its pot is on a stove that is on; if the pot is not on the stove it falls by 5, but not below 20; on a stove that is off it stays.
- isBurnt: becomes true at the tick the temperature reaches 100.""",
    )
    action_rules = action_rules_text(switches=True)
    score_rules = (
        "The score is 1 while the soup is at least 60 degrees and not burnt, else 0.\n"
        "The game is won and over when the soup is at least 60 degrees and the stove is off.\n"
        "The game is lost and over when the soup is burnt."
    )
    extra_verbs = ("turn on", "turn off")

    def setup(self) -> None:
        rng = self.rng
        self.stove = self.create(
            "stove",
            "Stove",
            container_props(prefix="on", moveable=False, isOn=False, heatPerTick=rng.choice((10, 15, 20))),
        )
        holder = self.world
        if rng.random() < 0.5:
            holder = self.create("cupboard", "Cupboard", container_props(openable=True, is_open=False, moveable=False))
        self.pot = self.create("pot", "Pot", container_props(), into=holder)
        label = rng.choice(SOUPS)
        self.soup = self.create(
            label,
            "Soup",
            item_props(moveable=False, temperature=rng.choice((4, 8, 12, 16, 20)), isBurnt=False),
            into=self.pot,
        )
        self.task = f"Your task is to heat the {label} to at least {HOT} degrees, then turn off the stove."

    def detail(self, thing: Thing) -> str:
        if thing is self.stove:
            return " that is " + ("on" if thing.props["isOn"] else "off")
        return ""

    def tick(self) -> None:
        props = self.soup.props
        if self.pot.parent is self.stove:
            if self.stove.props["isOn"]:
                props["temperature"] += self.stove.props["heatPerTick"]
        elif props["temperature"] > ROOM_TEMPERATURE:
            props["temperature"] = max(ROOM_TEMPERATURE, props["temperature"] - 5)
        if props["temperature"] >= BURNT:
            props["isBurnt"] = True

    def update_score(self) -> None:
        props = self.soup.props
        hot = props["temperature"] >= HOT and not props["isBurnt"]
        self.score = int(hot)
        self.won = hot and not self.stove.props["isOn"]
        self.over = self.won or props["isBurnt"]

    def plan(self):
        hot = self.soup.props["temperature"] >= HOT
        if self.pot.parent is not self.stove and not hot:
            return self.deliver(self.pot, self.stove)
        if hot:
            return ("turn off", self.stove)
        if not self.stove.props["isOn"]:
            return ("turn on", self.stove)
        return ("look",)  # wait for the soup to heat up
