"""measure-tea: read a thermometer dipped in tea that cools while its thermos is open, then answer it."""

from __future__ import annotations

from .engine import ROOM_TEMPERATURE, TextGame, Thing, action_rules_text, container_props, item_props, object_rules_text

TEAS = ("green tea", "black tea", "mint tea", "herbal tea")


class MeasureTea(TextGame):
    name = "measure-tea"
    room = "cafe"
    object_rules = object_rules_text(
        """Object: Thermos
Description: a moveable openable container holding the tea.""",
        """Object: Tea
Description: a liquid in the cup; it is not moveable.
Properties:
- temperature: in degrees; per tick, while the thermos is open, it falls by coolPerTick, but not below 20.""",
        """Object: Thermometer
Description: a moveable object.
Properties:
- reading: per tick, after the tea cools, set to the tea's temperature if the thermometer is in the thermos, else 20.""",
    )
    action_rules = action_rules_text("""
answer NUMBER:
Rules:
1. Changes no object; it ends the game (see the score).
""")
    score_rules = (
        "Answering ends the game. It is won, with score 1, if the number equals the tea's temperature "
        "before the action; otherwise it is lost with score 0."
    )

    def setup(self) -> None:
        rng = self.rng
        self.thermos = self.create("thermos", "Thermos", container_props(openable=True, is_open=rng.random() < 0.3))
        label = rng.choice(TEAS)
        self.tea = self.create(
            label,
            "Tea",
            item_props(moveable=False, temperature=rng.randrange(60, 96), coolPerTick=rng.choice((1, 2, 3))),
            into=self.thermos,
        )
        self.thermometer = self.create("thermometer", "Thermometer", item_props(reading=ROOM_TEMPERATURE))
        if rng.random() < 0.5:
            self.create(rng.choice(("spoon", "saucer")), "Item", item_props())
        self.answered: bool | None = None  # None until the player answers, then whether it was right
        self.read = False  # the agent's memory: has the thermometer shown the tea's temperature?
        self.task = f"Your task is to measure the temperature of the {label} and answer it."

    def detail(self, thing: Thing) -> str:
        return f" showing {thing.props['reading']} degrees" if thing is self.thermometer else ""

    def do_answer(self, number: int) -> str:
        self.answered = number == self.tea.props["temperature"]
        return f"You answer {number}."

    def tick(self) -> None:
        props = self.tea.props
        if self.thermos.props["isOpen"]:
            props["temperature"] = max(ROOM_TEMPERATURE, props["temperature"] - props["coolPerTick"])
        inside = self.thermometer.parent is self.thermos
        self.thermometer.props["reading"] = props["temperature"] if inside else ROOM_TEMPERATURE
        self.read = inside

    def update_score(self) -> None:
        self.over = self.answered is not None
        self.won = bool(self.answered)
        self.score = int(self.won)

    def plan(self):
        if self.thermometer.parent is not self.thermos:
            return self.deliver(self.thermometer, self.thermos)
        if self.thermos.props["isOpen"]:
            return ("close", self.thermos)  # stops the tea cooling, so the reading stays right
        if not self.read:
            return ("look",)  # wait one tick for the reading
        return ("answer", self.thermometer.props["reading"])

    def random_action(self):
        if self.rng.random() < 0.06:  # a guess, sometimes close to the truth
            return ("answer", self.tea.props["temperature"] + self.rng.choice((-3, -1, 1, 2, 5)))
        return super().random_action()
