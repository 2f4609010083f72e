"""A raw server-sent-events reader for tests and benches: frames as they are on the wire."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SseFrame:
    """One frame (or a comment block such as `: ping`)."""

    id: int | None = None
    event: str = "message"
    data: Any = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)


def parse_block(block: bytes) -> SseFrame:
    """One blank-line-terminated block of `field: value` lines."""
    frame = SseFrame()
    data: list[str] = []
    for line in block.decode().split("\n"):
        if not line:
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "":
            frame.comments.append(value)
        elif name == "id":
            frame.id = int(value)
        elif name == "event":
            frame.event = value
        elif name == "data":
            data.append(value)
        elif name == "retry":
            frame.retry = int(value)
    if data:
        frame.data = json.loads("\n".join(data))
    return frame


class SseReader:
    """Reads frames from a raw stream (asyncio.StreamReader or aiohttp's)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._buffer = b""

    async def block(self, wait: float = 5.0) -> SseFrame:
        """The next block, pings included."""
        async with asyncio.timeout(wait):
            while b"\n\n" not in self._buffer:
                chunk = await self.stream.read(2**16)
                if not chunk:
                    raise EOFError("the stream ended")
                self._buffer += chunk
        block, _, self._buffer = self._buffer.partition(b"\n\n")
        return parse_block(block)

    async def frame(self, wait: float = 5.0) -> SseFrame:
        """The next frame with an event (pings skipped)."""
        async with asyncio.timeout(wait):
            while True:
                frame = await self.block(wait)
                if frame.id is not None:
                    return frame

    async def until(self, event: str, wait: float = 5.0) -> list[SseFrame]:
        """Frames up to and including the first of this type."""
        out: list[SseFrame] = []
        async with asyncio.timeout(wait):
            while not out or out[-1].event != event:
                out.append(await self.frame(wait))
        return out
