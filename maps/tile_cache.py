"""On-disk tile cache with a maximum age and a size bound (synchronous; call it off the loop)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TileKey = tuple[int, int, int]  # z, x, y


@dataclass(frozen=True, slots=True)
class CachedTile:
    """A tile's bytes and when they were fetched (unix time)."""

    data: bytes
    fetched_at: float


class TileCache:
    """Tiles under cache_dir/<source hash>/z/x/y.png; oldest tiles go first past max_bytes."""

    def __init__(self, cache_dir: Path, tile_url: str, *, max_age_s: float, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes: must be positive")
        # One folder per tile source: switching ONTWATCH_TILE_URL must not mix map styles.
        source = hashlib.sha256(tile_url.encode()).hexdigest()[:16]
        self.root = Path(cache_dir) / source
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # renders for several views may write at once
        self._total: int | None = None  # bytes on disk, learnt by one scan then kept up to date

    def path(self, key: TileKey) -> Path:
        """Where a tile lives on disk."""
        z, x, y = key
        return self.root / str(z) / str(x) / f"{y}.png"

    def get(self, key: TileKey) -> CachedTile | None:
        """The cached tile, fresh or stale, or None."""
        p = self.path(key)
        try:
            with p.open("rb") as fh:
                data = fh.read()
                fetched_at = os.fstat(fh.fileno()).st_mtime
        except OSError:
            return None
        return CachedTile(data, fetched_at) if data else None

    def is_fresh(self, tile: CachedTile, now: float | None = None) -> bool:
        """Younger than the maximum age."""
        return ((now or time.time()) - tile.fetched_at) < self.max_age_s

    def put(self, key: TileKey, data: bytes) -> None:
        """Store a tile atomically (a crash leaves no half tile), then keep the size bound."""
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        old = p.stat().st_size if p.exists() else 0
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            total = self._scan() if self._total is None else self._total + len(data) - old
            self._total = total
            if total > self.max_bytes:
                self._evict()

    def touch(self, key: TileKey) -> None:
        """Mark a stale tile fresh again (the server said 304 Not Modified)."""
        with contextlib.suppress(OSError):
            os.utime(self.path(key))

    def size(self) -> int:
        """Bytes the cache holds on disk."""
        with self._lock:
            self._total = self._scan()
            return self._total

    def _scan(self) -> int:
        total = 0
        if self.root.exists():
            for p in self.root.rglob("*.png"):
                with contextlib.suppress(OSError):
                    total += p.stat().st_size
        return total

    def _evict(self) -> None:
        # Down to 80% of the bound, so a busy cache does not scan the disk on every write.
        files: list[tuple[float, int, Path]] = []
        for p in self.root.rglob("*.png"):
            try:
                st = p.stat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, p))
        files.sort()
        total = sum(size for _, size, _ in files)
        target = int(self.max_bytes * 0.8)
        removed = 0
        for _, size, p in files:
            if total <= target:
                break
            p.unlink(missing_ok=True)
            total -= size
            removed += 1
        self._total = total
        log.info("tile cache: evicted %d tiles, %d bytes left", removed, total)
