"""run-dishwasher: load dirty dishes and a soap pod, close the door, run a cycle that advances by ticks."""

from __future__ import annotations

from .engine import TextGame, Thing, action_rules_text, container_props, item_props, object_rules_text

DISHES = ("plate", "cup", "bowl", "mug", "glass", "fork")
CYCLE_TICKS = 3


class RunDishwasher(TextGame):
    name = "run-dishwasher"
    room = "kitchen"
    object_rules = object_rules_text(
        """Object: Dishwasher
Description: an openable container that is not moveable.
Properties:
- isOn: whether a cycle is running. It can only be turned on while closed, and cannot be opened while on.
- cycleStage: per tick while on, it increases by 1. When it reaches 3 the cycle ends: if a soap pod is inside, the soap pod is removed and every dish inside gets isDirty false; then isOn becomes false and cycleStage 0. Turning it off keeps cycleStage.""",
        """Object: Dish
Description: a moveable object.
Properties:
- isDirty: whether the dish still needs washing.""",
        """Object: SoapPod
Description: a moveable detergent, used up by one cycle.""",
    )
    action_rules = action_rules_text(switches=True)
    score_rules = (
        "The score is the number of dishes that are not dirty.\n"
        "The game is won and over when no dish is dirty.\n"
        "The game is lost and over when a dish is dirty and no soap pod is left."
    )
    extra_verbs = ("turn on", "turn off")

    def setup(self) -> None:
        rng = self.rng
        self.washer = self.create(
            "dishwasher",
            "Dishwasher",
            container_props(openable=True, is_open=rng.random() < 0.5, moveable=False, isOn=False, cycleStage=0),
        )
        labels = rng.sample(DISHES, rng.choice((2, 3)))
        self.dishes = [
            self.create(
                label, "Dish", item_props(isDirty=True), into=self.washer if rng.random() < 0.25 else self.world
            )
            for label in labels
        ]
        self.soap = self.create("soap pod", "SoapPod", item_props())
        self.task = "Your task is to wash the dirty dishes in the dishwasher."

    def detail(self, thing: Thing) -> str:
        if thing is self.washer:
            return f" that is {'running' if thing.props['isOn'] else 'off'}"
        if thing.kind == "Dish":
            return " that is " + ("dirty" if thing.props["isDirty"] else "clean")
        return ""

    def check_switch(self, thing: Thing, key: str, value: bool) -> str | None:
        if thing is self.washer and key == "isOn" and value and thing.props["isOpen"]:
            return "Close the dishwasher first."
        if thing is self.washer and key == "isOpen" and value and thing.props["isOn"]:
            return "The dishwasher is locked while it runs."
        return None

    def tick(self) -> None:
        props = self.washer.props
        if not props["isOn"]:
            return
        props["cycleStage"] += 1
        if props["cycleStage"] < CYCLE_TICKS:
            return
        soap = [t for t in self.washer.children if t.kind == "SoapPod"]
        if soap:
            self.remove(soap[0])
            for thing in self.washer.children:
                if thing.kind == "Dish":
                    thing.props["isDirty"] = False
        props["isOn"], props["cycleStage"] = False, 0

    def update_score(self) -> None:
        dirty = sum(d.props["isDirty"] for d in self.dishes)
        self.score = len(self.dishes) - dirty
        self.won = dirty == 0
        self.over = self.won or self.soap.parent is None

    def plan(self):
        if self.washer.props["isOn"]:
            return ("look",)  # wait for the cycle to finish
        for thing in (*self.dishes, self.soap):
            if thing.parent is not self.washer:
                return self.deliver(thing, self.washer)
        if self.washer.props["isOpen"]:
            return ("close", self.washer)
        return ("turn on", self.washer)
