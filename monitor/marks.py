"""Marking notifications read: the write, then the feed item that tells live readers."""

from __future__ import annotations

from datetime import datetime

from monitor.feed import Feed, ReadMark
from monitor.ports import ReadModel


async def mark_read(
    reads: ReadModel, feed: Feed, at: datetime, notification_id: int | None = None
) -> int:
    """Mark one notification (or every one, when None) read, then publish a ReadMark.

    The mark is published only after the write and only when it changed something; the
    API's mark-read routes and the pages both come through here.
    """
    changed = await reads.mark_read(notification_id)
    if changed:
        ids = None if notification_id is None else (notification_id,)
        feed.publish(ReadMark(at=at, ids=ids, count=changed))
    return changed
