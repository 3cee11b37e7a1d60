"""make-salad: gather the recipe's vegetables in a bowl and mix them; mixing creates a new object."""

from __future__ import annotations

from .engine import TextGame, Thing, action_rules_text, container_props, item_props, object_rules_text

VEGETABLES = ("lettuce", "tomato", "cucumber", "carrot", "onion", "pepper", "radish")


class MakeSalad(TextGame):
    name = "make-salad"
    room = "kitchen"
    object_rules = object_rules_text(
        """Object: Fridge
Description: an openable container that is not moveable.""",
        """Object: Bowl
Description: a moveable open container where vegetables are mixed.""",
        """Object: Vegetable
Description: a moveable ingredient.""",
        """Object: Salad / Mess
Description: a moveable dish created by mixing.
Properties:
- ingredients: the sorted names (without ID) of the vegetables it was made from.""",
    )
    action_rules = action_rules_text("""
mix BOWL:
Rules:
1. The bowl must hold at least two objects.
2. Every object in the bowl is removed and one new object is created in the bowl, with the next free uuid: a "salad" (type Salad) if the removed names are exactly the recipe's vegetables, else a "mushy mess" (type Mess).
""")
    score_rules = (
        "The game is won and over, with score 1, when a salad exists.\n"
        "The game is lost and over, with score 0, when a mushy mess exists."
    )
    extra_verbs = ("mix",)

    def setup(self) -> None:
        rng = self.rng
        picked = rng.sample(VEGETABLES, rng.choice((3, 4)))
        self.recipe = sorted(picked[:2])
        self.fridge = self.create("fridge", "Fridge", container_props(openable=True, is_open=False, moveable=False))
        self.bowl = self.create("bowl", "Bowl", container_props())
        # The agent's idea of the recipe: now and then it mixes in the wrong vegetable (a mess).
        self.believed = self.recipe if rng.random() < 0.8 else sorted([self.recipe[0], picked[2]])
        rng.shuffle(picked)
        for label in picked:
            self.create(label, "Vegetable", item_props(), into=self.fridge if rng.random() < 0.6 else self.world)
        self.task = f"Your task is to make a salad from the {self.recipe[0]} and the {self.recipe[1]}."

    def do_mix(self, bowl: Thing) -> str:
        if bowl is not self.bowl:
            return f"You can't mix the {bowl.label}."
        if not self.visible(bowl):
            return "You don't see the bowl."
        contents = list(bowl.children)
        if len(contents) < 2:
            return "There is not enough in the bowl to mix."
        ingredients = sorted(t.label for t in contents)
        for thing in contents:
            self.remove(thing)
        if ingredients == self.recipe:
            self.create("salad", "Salad", item_props(ingredients=ingredients), into=bowl)
            return "You mix the vegetables into a salad."
        self.create("mushy mess", "Mess", item_props(ingredients=ingredients), into=bowl)
        return "You mix the vegetables into a mushy mess."

    def update_score(self) -> None:
        kinds = {t.kind for t in self.bowl.children}
        self.won = "Salad" in kinds
        self.over = self.won or "Mess" in kinds
        self.score = int(self.won)

    def plan(self):
        labels = [t.label for t in self.bowl.children]
        for thing in self.bowl.children:
            if thing.label not in self.believed:
                return ("take", thing)  # a wrong vegetable would spoil the salad
        for thing in self.things():
            if thing.label in self.believed and thing.parent is not self.bowl and thing.label not in labels:
                return self.deliver(thing, self.bowl)
        return ("mix", self.bowl)
