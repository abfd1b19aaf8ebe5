"""Union-find over integer ids: connected components of linked images (duplicate groups in
dedup, leak-free split groups in training). Each component's root is its smallest id."""

from __future__ import annotations

from collections.abc import Iterable


class UnionFind:
    def __init__(self, items: Iterable[int] = ()) -> None:
        self.parent: dict[int, int] = {item: item for item in items}

    def find(self, item: int) -> int:
        """The root of `item`'s component (an unseen item becomes its own component)."""
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # smallest id stays the root
