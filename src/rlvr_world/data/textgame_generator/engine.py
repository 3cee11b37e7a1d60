"""Shared engine of the procedural text games: objects, the common actions, ticks and serialisation.

A game is a tree of :class:`Thing` objects rooted at the world (uuid 1), which holds the agent
(uuid 0) and everything else. One step is ``act(action)`` then ``tick()`` then ``update_score()``;
:meth:`TextGame.state` serialises the tree in the GPT-simulator (ByteSized32) layout.

Actions are tuples ``(verb, *arguments)`` whose arguments are :class:`Thing` objects (or a number
for ``answer``); :meth:`TextGame.render` writes them as the text a player would type. Executing
tuples instead of parsing text keeps the dynamics exact and the generator fast.
"""

from __future__ import annotations

import copy
import random
from typing import Any, ClassVar

SEPARATOR = "=========="
ROOM_TEMPERATURE = 20

Action = tuple


def item_props(moveable: bool = True, **extra: Any) -> dict:
    return {"isContainer": False, "isMoveable": moveable, **extra}


def container_props(
    prefix: str = "in", openable: bool = False, is_open: bool = True, moveable: bool = True, **extra: Any
) -> dict:
    return {
        "isContainer": True,
        "isMoveable": moveable,
        "isOpenable": openable,
        "isOpen": is_open,
        "containerPrefix": prefix,
        **extra,
    }


def article(label: str) -> str:
    return "an" if label[0] in "aeiou" else "a"


class Thing:
    """One game object; ``label`` is the bare name, ``name`` adds the uuid like the reference does."""

    __slots__ = ("children", "kind", "label", "parent", "props", "uuid")

    def __init__(self, uuid: int, label: str, kind: str, props: dict):
        self.uuid = uuid
        self.label = label
        self.kind = kind
        self.props = props
        self.parent: Thing | None = None
        self.children: list[Thing] = []

    @property
    def name(self) -> str:
        return f"{self.label} (ID: {self.uuid})"

    @property
    def is_container(self) -> bool:
        return bool(self.props.get("isContainer"))

    @property
    def is_open(self) -> bool:
        return bool(self.props.get("isOpen", True))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "uuid": self.uuid,
            "type": self.kind,
            "properties": copy.deepcopy(self.props),
            "contains": [child.name for child in self.children],
        }

    def __repr__(self) -> str:
        return f"Thing({self.name!r})"


# Rules shared by every game; each game appends its own object classes and verbs.
CONTAINER_RULES = """Object: Container
Description: the World, the Agent (its contents are the inventory) and every object with isContainer true hold other objects.
Properties:
- isOpen: objects go in or out only when true. Only isOpenable containers open or close.
- containerPrefix: "in" or "on".
"""

BASIC_ACTION_RULES = """look around / inventory / examine OBJ:
Rules:
1. Nothing changes.

take OBJ:
Rules:
1. OBJ must be isMoveable, not in the inventory, and not inside a closed container.
2. OBJ moves into the inventory (the agent).

put OBJ in/on CONTAINER:
Rules:
1. OBJ must be in the inventory; CONTAINER must be an open container, not the agent and not inside OBJ.
2. OBJ moves into CONTAINER.

open/close OBJ:
Rules:
1. OBJ must be isOpenable, and closed to open or open to close.
"""

SWITCH_ACTION_RULES = """
turn on/off OBJ:
Rules:
1. OBJ must have isOn, and be off to turn on or on to turn off.
"""

INVALID_ACTION_RULE = "\nAny action that breaks a rule changes nothing.\n"


def object_rules_text(*classes: str) -> str:
    """Object classes separated like the reference; the prompt drops the text after the last separator."""
    return "".join(f"{text.strip()}\n\n{SEPARATOR}\n" for text in (CONTAINER_RULES, *classes))


def action_rules_text(extra: str = "", switches: bool = False) -> str:
    return BASIC_ACTION_RULES + (SWITCH_ACTION_RULES if switches else "") + extra + INVALID_ACTION_RULE


class TextGame:
    """Base class of a procedural game: subclasses build the world in :meth:`setup` and add dynamics."""

    name: ClassVar[str] = ""
    room: ClassVar[str] = "room"
    object_rules: ClassVar[str] = ""
    action_rules: ClassVar[str] = ""
    score_rules: ClassVar[str] = ""
    # Verbs the noisy agent may try on random objects, besides take/put/open/close.
    extra_verbs: ClassVar[tuple[str, ...]] = ()
    max_steps: ClassVar[int] = 30
    # Noisy agent: plan with p_plan, look/inventory/examine with p_info, else a random action.
    p_plan: ClassVar[float] = 0.45
    p_info: ClassVar[float] = 0.25

    TEMPLATES: ClassVar[dict[str, str]] = {
        "look": "look around",
        "inventory": "inventory",
        "examine": "examine {0}",
        "take": "take {0}",
        "put": "put {0} {prefix} {1}",
        "open": "open {0}",
        "close": "close {0}",
        "turn on": "turn on {0}",
        "turn off": "turn off {0}",
        "connect": "connect {0} to {1}",
        "disconnect": "disconnect {0}",
        "mix": "mix {0}",
        "water": "water {0}",
        "answer": "answer {0}",
    }
    ARITY: ClassVar[dict[str, int]] = {
        "take": 1,
        "put": 2,
        "open": 1,
        "close": 1,
        "turn on": 1,
        "turn off": 1,
        "connect": 2,
        "disconnect": 1,
        "mix": 1,
        "water": 1,
        "examine": 1,
    }

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.agent = Thing(0, "agent", "Agent", container_props(moveable=False))
        self.world = Thing(1, self.room, "World", container_props(moveable=False))
        self.max_uuid = 2
        self._attach(self.agent, self.world)
        self.score, self.over, self.won = 0, False, False
        self.task = ""
        self.setup()
        self.update_score()
        self.last_action = ""
        self.observation = self.look_text()

    # ------------------------------------------------------------------ world building

    def setup(self) -> None:
        raise NotImplementedError

    def create(self, label: str, kind: str, props: dict, into: Thing | None = None) -> Thing:
        """A new object takes the next free uuid (the prompt's "UUID base")."""
        thing = Thing(self.max_uuid, label, kind, props)
        self.max_uuid += 1
        self._attach(thing, into or self.world)
        return thing

    def remove(self, thing: Thing) -> None:
        if thing.parent is not None:
            thing.parent.children.remove(thing)
            thing.parent = None

    def move(self, thing: Thing, into: Thing) -> None:
        self.remove(thing)
        self._attach(thing, into)

    @staticmethod
    def _attach(thing: Thing, into: Thing) -> None:
        thing.parent = into
        into.children.append(thing)

    def things(self) -> list[Thing]:
        """Every object in the world, depth first from the world (the order of ``objects``)."""
        out, stack = [], [self.world]
        while stack:
            thing = stack.pop()
            out.append(thing)
            stack.extend(reversed(thing.children))
        return out

    def held(self) -> list[Thing]:
        return list(self.agent.children)

    def inside(self, thing: Thing, container: Thing) -> bool:
        """Whether ``thing`` is somewhere inside ``container``."""
        parent = thing.parent
        while parent is not None:
            if parent is container:
                return True
            parent = parent.parent
        return False

    def visible(self, thing: Thing) -> bool:
        """In the world and not hidden by a closed container."""
        if thing is self.world:
            return True
        if not self.inside(thing, self.world):
            return False
        parent = thing.parent
        while parent is not self.world:
            if not parent.is_open:
                return False
            parent = parent.parent
        return True

    # ------------------------------------------------------------------ serialisation

    def state(self) -> dict:
        return {
            "observation": self.observation,
            "look": self.look_text(),
            "inventory": self.inventory_text(),
            "taskDesc": self.task,
            "lastAction": self.last_action,
            "objects": [thing.to_json() for thing in self.things()],
            "max_UUID": self.max_uuid,
        }

    def score_state(self) -> dict:
        return {"score": self.score, "gameOver": self.over, "gameWon": self.won}

    def detail(self, thing: Thing) -> str:
        """Game-specific words after an object's name, e.g. " that is on"."""
        return ""

    def describe(self, thing: Thing) -> str:
        text = f"{article(thing.label)} {thing.name}{self.detail(thing)}"
        if thing.is_container and thing is not self.agent:
            if not thing.is_open:
                text += " (closed)"
            elif thing.children:
                listed = ", ".join(child.name for child in thing.children)
                text += f" with {listed} {thing.props['containerPrefix']} it"
        return text

    def look_text(self) -> str:
        seen = "".join(f"\t{self.describe(t)}\n" for t in self.world.children if t is not self.agent)
        return f"You are in the {self.room}. You see:\n{seen}"

    def inventory_text(self) -> str:
        if not self.agent.children:
            return "Your inventory is empty."
        return "You carry: " + ", ".join(f"{article(t.label)} {t.name}" for t in self.agent.children) + "."

    def render(self, action: Action) -> str:
        verb, *args = action
        words = [arg.name if isinstance(arg, Thing) else str(arg) for arg in args]
        prefix = args[1].props.get("containerPrefix", "in") if verb == "put" else ""
        return self.TEMPLATES[verb].format(*words, prefix=prefix)

    # ------------------------------------------------------------------ one step

    def act(self, action: Action) -> None:
        verb, *args = action
        self.last_action = self.render(action)
        self.observation = getattr(self, "do_" + verb.replace(" ", "_"))(*args)

    def tick(self) -> None:
        """Changes that happen on their own after every action (heating, growing, ...)."""

    def update_score(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ common actions

    def do_look(self) -> str:
        return self.look_text()

    def do_inventory(self) -> str:
        return self.inventory_text()

    def do_examine(self, thing: Thing) -> str:
        if not self.visible(thing):
            return f"You don't see the {thing.label}."
        return f"You see {self.describe(thing)}."

    def do_take(self, thing: Thing) -> str:
        if thing is self.agent or thing is self.world:
            return "You can't take that."
        if not self.visible(thing):
            return f"You don't see the {thing.label}."
        if thing.parent is self.agent:
            return f"You already have the {thing.label}."
        if not thing.props.get("isMoveable"):
            return f"The {thing.label} can't be moved."
        self.move(thing, self.agent)
        return f"You take the {thing.label}."

    def do_put(self, thing: Thing, dest: Thing) -> str:
        if thing.parent is not self.agent:
            return f"You don't have the {thing.label}."
        if dest is thing or dest is self.agent or not dest.is_container:
            return f"You can't put things in the {dest.label}."
        if not self.visible(dest) or self.inside(dest, thing):
            return f"You don't see the {dest.label}."
        if not dest.is_open:
            return f"The {dest.label} is closed."
        refusal = self.check_put(thing, dest)
        if refusal:
            return refusal
        self.move(thing, dest)
        return f"You put the {thing.label} {dest.props['containerPrefix']} the {dest.label}."

    def do_open(self, thing: Thing) -> str:
        return self._set_open(thing, True)

    def do_close(self, thing: Thing) -> str:
        return self._set_open(thing, False)

    def _set_open(self, thing: Thing, value: bool) -> str:
        verb = "open" if value else "close"
        if not self.visible(thing):
            return f"You don't see the {thing.label}."
        if not thing.props.get("isOpenable"):
            return f"You can't {verb} the {thing.label}."
        if thing.props["isOpen"] == value:
            return f"The {thing.label} is already {'open' if value else 'closed'}."
        refusal = self.check_switch(thing, "isOpen", value)
        if refusal:
            return refusal
        thing.props["isOpen"] = value
        return f"You {verb} the {thing.label}."

    def do_turn_on(self, thing: Thing) -> str:
        return self._set_on(thing, True)

    def do_turn_off(self, thing: Thing) -> str:
        return self._set_on(thing, False)

    def _set_on(self, thing: Thing, value: bool) -> str:
        word = "on" if value else "off"
        if not self.visible(thing):
            return f"You don't see the {thing.label}."
        if "isOn" not in thing.props:
            return f"You can't turn {word} the {thing.label}."
        if thing.props["isOn"] == value:
            return f"The {thing.label} is already {word}."
        refusal = self.check_switch(thing, "isOn", value)
        if refusal:
            return refusal
        thing.props["isOn"] = value
        return f"You turn {word} the {thing.label}."

    def check_put(self, thing: Thing, dest: Thing) -> str | None:
        """A game-specific refusal message for ``put``, or None to allow it."""
        return None

    def check_switch(self, thing: Thing, key: str, value: bool) -> str | None:
        """A game-specific refusal for setting ``isOpen``/``isOn``, or None to allow it."""
        return None

    # ------------------------------------------------------------------ the noisy scripted agent

    def plan(self) -> Action:
        """The next purposeful action toward the goal (full knowledge of the state)."""
        raise NotImplementedError

    def random_action(self) -> Action:
        verb = self.rng.choice(("take", "put", "open", "close", *self.extra_verbs))
        things = self.things()
        args = [self.rng.choice(things) for _ in range(self.ARITY[verb])]
        held = self.held()
        if verb == "put" and held and self.rng.random() < 0.5:
            args[0] = self.rng.choice(held)  # a put of a held object is the interesting kind
        return (verb, *args)

    def info_action(self) -> Action:
        choice = self.rng.random()
        if choice < 0.4:
            return ("look",)
        if choice < 0.6:
            return ("inventory",)
        return ("examine", self.rng.choice(self.things()))

    def choose_action(self) -> Action:
        draw = self.rng.random()
        if draw < self.p_plan:
            return self.plan()
        if draw < self.p_plan + self.p_info:
            return self.info_action()
        return self.random_action()

    def fetch(self, thing: Thing) -> Action:
        """The next action that gets ``thing`` into the inventory (opening what hides it first)."""
        blocker = thing.parent
        while blocker is not None and blocker is not self.world:
            if not blocker.is_open:
                return ("open", blocker)
            blocker = blocker.parent
        return ("take", thing)

    def deliver(self, thing: Thing, dest: Thing) -> Action:
        """The next action that puts ``thing`` into ``dest``."""
        if thing.parent is not self.agent:
            return self.fetch(thing)
        if not dest.is_open:
            return ("open", dest)
        return ("put", thing, dest)
