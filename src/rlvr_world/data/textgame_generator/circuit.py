"""light-circuit: wire a light bulb to a battery; the bulb lights at the next tick once the loop closes."""

from __future__ import annotations

from .engine import TextGame, Thing, action_rules_text, item_props, object_rules_text

COLORS = ("red", "black", "blue", "green", "yellow")


class LightCircuit(TextGame):
    name = "light-circuit"
    room = "workshop"
    object_rules = object_rules_text(
        """Object: Wire
Description: a moveable wire with two ends.
Properties:
- connections: names of the objects its ends are connected to (at most 2).
- isBroken: a broken wire conducts nothing.""",
        """Object: Battery
Description: a moveable power source.
Properties:
- connections: names of the wires connected to it.""",
        """Object: LightBulb
Description: a moveable bulb.
Properties:
- connections: names of the wires connected to it.
- isOn: per tick, set to true if at least two wires that are not broken each connect the bulb and the battery, else false.""",
    )
    action_rules = action_rules_text("""
connect WIRE to OBJ:
Rules:
1. The first object must be a wire with a free end; the second must be the battery or the light bulb and not already connected to that wire.
2. Each one's name is added to the other's connections.

disconnect WIRE:
Rules:
1. The wire must have connections; they are all removed, from both sides.
""")
    score_rules = "The game is won and over, with score 1, when the light bulb is on. Otherwise the score is 0."
    extra_verbs = ("connect", "disconnect")

    def setup(self) -> None:
        rng = self.rng
        colors = rng.sample(COLORS, rng.choice((2, 3, 3)))
        broken = rng.randrange(len(colors)) if len(colors) == 3 else -1
        specs = [
            ("battery", "Battery", item_props(connections=[])),
            ("light bulb", "LightBulb", item_props(connections=[], isOn=False)),
        ]
        specs += [(f"{c} wire", "Wire", item_props(connections=[], isBroken=i == broken)) for i, c in enumerate(colors)]
        rng.shuffle(specs)
        made = [self.create(*spec) for spec in specs]
        self.battery = next(t for t in made if t.kind == "Battery")
        self.bulb = next(t for t in made if t.kind == "LightBulb")
        self.wires = [t for t in made if t.kind == "Wire"]
        self.task = "Your task is to light the light bulb."

    def detail(self, thing: Thing) -> str:
        words = ""
        if thing.kind == "Wire" and thing.props["isBroken"]:
            words += " that is frayed"
        if thing is self.bulb:
            words += " that is " + ("lit" if thing.props["isOn"] else "dark")
        if thing.props.get("connections"):
            words += ", connected to " + " and ".join(thing.props["connections"])
        return words

    def do_connect(self, wire: Thing, target: Thing) -> str:
        if wire.kind != "Wire":
            return f"The {wire.label} is not a wire."
        if target is not self.battery and target is not self.bulb:
            return "A wire can only connect to the battery or the light bulb."
        if not (self.visible(wire) and self.visible(target)):
            return "You don't see that."
        ends = wire.props["connections"]
        if target.name in ends:
            return f"The {wire.label} is already connected to the {target.label}."
        if len(ends) >= 2:
            return f"Both ends of the {wire.label} are in use."
        ends.append(target.name)
        target.props["connections"].append(wire.name)
        return f"You connect the {wire.label} to the {target.label}."

    def do_disconnect(self, wire: Thing) -> str:
        if wire.kind != "Wire" or not wire.props["connections"]:
            return f"There is nothing to disconnect on the {wire.label}."
        for other in (self.battery, self.bulb):
            if wire.name in other.props["connections"]:
                other.props["connections"].remove(wire.name)
        wire.props["connections"] = []
        return f"You disconnect the {wire.label}."

    def tick(self) -> None:
        ends = (self.bulb.name, self.battery.name)
        good = [w for w in self.wires if not w.props["isBroken"] and all(e in w.props["connections"] for e in ends)]
        self.bulb.props["isOn"] = len(good) >= 2

    def update_score(self) -> None:
        self.score = int(self.bulb.props["isOn"])
        self.over = self.won = self.bulb.props["isOn"]

    def plan(self):
        for wire in [w for w in self.wires if not w.props["isBroken"]][:2]:
            for target in (self.bulb, self.battery):
                if target.name not in wire.props["connections"]:
                    if len(wire.props["connections"]) >= 2:
                        return ("disconnect", wire)
                    return ("connect", wire, target)
        return ("look",)

    def random_action(self):
        if self.rng.random() < 0.5:  # a try with a random wire, good or broken
            target = self.rng.choice((self.battery, self.bulb, *self.wires))
            return ("connect", self.rng.choice(self.wires), target)
        return super().random_action()
