"""The game registry: name -> game class."""

from __future__ import annotations

from .aquarium import FeedFish
from .circuit import LightCircuit
from .cooking import MakeSalad
from .dishwasher import RunDishwasher
from .engine import TextGame
from .freezing import FreezeWater
from .growing import GrowBean
from .heating import HeatSoup
from .sorting import SortRecycling
from .thermometer import MeasureTea
from .weighing import WeighFruit

GAMES: dict[str, type[TextGame]] = {
    game.name: game
    for game in (
        SortRecycling,
        HeatSoup,
        LightCircuit,
        MakeSalad,
        RunDishwasher,
        GrowBean,
        WeighFruit,
        FreezeWater,
        MeasureTea,
        FeedFish,
    )
}
