"""The service layer: REST helpers that the contexts (task_contexts.py) and the
scenarios (scenarios/) share, one module per service, as rally-openstack's
common/services. They take any context with the scenarios' interface (context.Ctx:
adapters, atomic, track) and import no context module, no scenario: the contexts and
the scenarios import them.

Standard library only here (the modules use keystoneauth1 through the context)."""

from __future__ import annotations

from collections.abc import Iterator


class RepeatedBytes:
    """`size` bytes made of `block` repeated, as a request body with a Content-Length.

    Iterating yields the block (and a last partial one): no copy of the data is made,
    so any size costs the memory of one block.
    """

    def __init__(self, block: bytes, size: int) -> None:
        if not block or size < 0:
            raise ValueError("RepeatedBytes needs a non-empty block and size >= 0")
        self.block = block
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        full, rest = divmod(self.size, len(self.block))
        for _ in range(full):
            yield self.block
        if rest:
            yield self.block[:rest]
