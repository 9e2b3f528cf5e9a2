"""A set with O(1) add, remove and uniform random choice."""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class RandomPool(Generic[T]):
    def __init__(self) -> None:
        self._items: list[T] = []
        self._index: dict[T, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items))

    def add(self, item: T) -> None:
        if item in self._index:
            return
        self._index[item] = len(self._items)
        self._items.append(item)

    def remove(self, item: T) -> None:
        """Remove ``item`` by swapping the last element into its slot."""
        i = self._index.pop(item)
        last = self._items.pop()
        if i < len(self._items):
            self._items[i] = last
            self._index[last] = i

    def discard(self, item: T) -> None:
        if item in self._index:
            self.remove(item)

    def choice(self, rng: random.Random) -> T:
        return self._items[rng.randrange(len(self._items))]

    def shuffled(self, rng: random.Random) -> list[T]:
        items = list(self._items)
        rng.shuffle(items)
        return items
