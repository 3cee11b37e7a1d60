"""Web-page (WebArena) world model: accessibility trees, their item changes, prompts and the answer parser.

The model sees a page's URL, the user's objective, the previous action, the page's accessibility
tree and the current action, and predicts how the tree changes, in three sections::

    New items:
    [55] StaticText 'Added 2 x Blue Mug'

    Deleted items:
    None

    Updated items:
    [3] link 'Cart (2)'

Every item line is ``[ID] type 'content' attrs``; a section without items holds the line ``None``.
The gold changes of a transition are the difference between the trees before and after
(:func:`tree_changes`): items whose ID only the new tree has are new, those only the old tree has
are deleted, and those whose line differs under the same ID are updated (listed as they are after).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SECTIONS = ("New items", "Deleted items", "Updated items")
NONE_LINE = "None"
THINK_END = "</think>"


# ----------------------------------------------------------------------------- items and trees


@dataclass(frozen=True)
class Item:
    """One accessibility-tree node: ``[id] role 'name' key: value ...`` at some depth."""

    id: int
    role: str
    name: str = ""
    attrs: tuple[tuple[str, str], ...] = ()
    depth: int = 0

    @property
    def line(self) -> str:
        """The item as a line without indentation (how changes are written)."""
        text = f"[{self.id}] {self.role} {quote(self.name)}"
        for key, value in self.attrs:
            text += f" {key}: {value}"
        return text


def quote(text: str) -> str:
    """Single quotes like WebArena's trees; a name holding a single quote is double-quoted instead."""
    return f'"{text}"' if "'" in text else f"'{text}'"


def render_tree(items: Iterable[Item]) -> str:
    """The observation: one item a line, indented with a tab per depth level."""
    return "\n".join("\t" * item.depth + item.line for item in items)


def tree_changes(before: Iterable[Item], after: Iterable[Item]) -> dict[str, list[str]]:
    """The gold changes between two trees, matched by ID; each section sorted by ID."""
    before, after = list(before), list(after)
    old = {item.id: item.line for item in before}
    new = {item.id: item.line for item in after}
    if len(old) != len(before) or len(new) != len(after):
        raise ValueError("item IDs must be unique within a tree")
    return {
        "New items": [new[i] for i in sorted(new.keys() - old.keys())],
        "Deleted items": [old[i] for i in sorted(old.keys() - new.keys())],
        "Updated items": [new[i] for i in sorted(new.keys() & old.keys()) if new[i] != old[i]],
    }


def no_changes() -> dict[str, list[str]]:
    return {section: [] for section in SECTIONS}


def format_changes(changes: dict[str, list[str]]) -> str:
    """The three-section answer; an empty section is written as ``None``."""
    blocks = []
    for section in SECTIONS:
        lines = changes.get(section) or [NONE_LINE]
        blocks.append(f"{section}:\n" + "\n".join(lines))
    return "\n\n".join(blocks)


def count_changes(changes: dict[str, list[str]]) -> int:
    return sum(len(changes.get(section, [])) for section in SECTIONS)


# ----------------------------------------------------------------------------- parsing answers


def parse_changes(text: Any) -> dict[str, list[str]] | None:
    """The three sections of a model's answer as lists of stripped lines; never raises.

    Reasoning before a ``</think>`` is dropped. Lines before the first section header are ignored;
    text after a header on the same line counts as a line of that section. A header given twice
    continues its section. ``None`` is kept as a line (it is what a gold section without items
    holds, so predicting it there is a match). Returns None when the text has no section header
    at all (a format error).
    """
    if not isinstance(text, str):
        return None
    if THINK_END in text:
        text = text.rsplit(THINK_END, 1)[1]
    sections: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        header = next((s for s in SECTIONS if line.startswith(s + ":")), None)
        if header is not None:
            current = header
            sections.setdefault(header, [])
            line = line[len(header) + 1 :].strip()
            if not line:
                continue
        if current is not None:
            sections[current].append(line)
    if not sections:
        return None
    return {section: sections.get(section, []) for section in SECTIONS}


# ----------------------------------------------------------------------------- prompts

INSTRUCTION = (
    "You are a world model of web pages. Given a web task, the current page's URL, the previous action, "
    "the current page's accessibility tree and the action about to be taken, predict how the accessibility "
    "tree changes after the action.\n\n"
    "Actions: click [id] clicks an element; type [id] [text] types text into a field and presses Enter "
    "(type [id] [text] [0] does not press Enter); select [id] [option] picks an option of a combobox; "
    "go_back returns to the previous page.\n\n"
    "Answer in three sections, 'New items:', 'Deleted items:' and 'Updated items:', separated by an empty "
    "line. List one item a line as it appears in the tree, '[ID] type 'content' attributes', without "
    "indentation; updated items are listed as they are after the action. Write 'None' under a section "
    "without items.\n\n"
)


@dataclass
class WebPromptOptions:
    """The full prompt explains the task and the format; tiny models get the fields alone."""

    include_instruction: bool = True


def build_prompt(url: str, objective: str, previous_action: str, observation: str, action: str,
                 options: WebPromptOptions | None = None) -> str:
    """The prompt for one transition: the (optional) instruction, then the five input fields."""
    options = options or WebPromptOptions()
    fields = (
        f"URL: {url}\nOBJECTIVE: {objective}\nPREVIOUS ACTION: {previous_action}\n"
        f"CURRENT OBSERVATION:\n{observation}\nCURRENT ACTION: {action}\n"
    )
    if options.include_instruction:
        return INSTRUCTION + fields + "\nGive the next-state prediction directly in the format above.\n"
    return fields
