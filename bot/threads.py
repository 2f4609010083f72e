"""One incident, one thread: which pending alerts edit, reply to, or open a message.

The message that opens an incident (an ONT's warning or critical, a mass outage) is the
thread's root; its message id is stored per chat, so a restart keeps the thread. Then:
- an escalation soon after the root was sent (`edit_window`, default 5 min) edits the root in
  place (state, severity, rto), when the root carries that incident alone;
- a later escalation, a reminder, a flapping notice and the recovery reply to the root;
- the recovery ends the thread.
A big batch (more than THREAD_BATCH rows for a chat, e.g. an outage digest) is composed as
before into as few messages as read well; its openings still become roots.
Pure functions: delivery does the sending and stores what changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.alerts import AlertMessage, OntLookup, compose
from monitor.model import EventKind
from monitor.ports import OutboxRow

THREAD_BATCH = 5  # rows for one chat at once above which everything goes out as a digest
EDIT_WINDOW = timedelta(minutes=5)
ROOT_KINDS = frozenset({EventKind.OPENED, EventKind.MASS_OUTAGE, EventKind.INVALID_IP})
FOLLOW_KINDS = frozenset(
    {
        EventKind.ESCALATED,
        EventKind.REMINDER,
        EventKind.RESOLVED,
        EventKind.FLAPPING,
        EventKind.FLAPPING_ENDED,
        EventKind.MASS_OUTAGE_RESOLVED,
    }
)
END_KINDS = frozenset({EventKind.RESOLVED, EventKind.MASS_OUTAGE_RESOLVED})


@dataclass(frozen=True, slots=True)
class Thread:
    """The root message of one incident in one chat."""

    key: str  # Event.key: the ONT id, or area:<area>
    message_id: int
    opened_at: datetime  # when the root was sent
    single: bool  # the root carries this incident alone (so it may be edited in place)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send (or one edit), and where it goes in its thread."""

    message: AlertMessage
    reply_to: int | None = None
    edit_of: int | None = None
    keys: tuple[str, ...] = ()  # the incidents (Event.key) of its rows


@dataclass(frozen=True, slots=True)
class ThreadChange:
    """What to store once an Outgoing was sent as message_id (None: the thread ended)."""

    key: str
    message_id: int | None
    single: bool = True


def plan(
    chat_id: int,
    rows: Sequence[OutboxRow],
    threads: Mapping[str, Thread],
    *,
    lang: str,
    tz: tzinfo,
    lookup: OntLookup,
    now: datetime,
    edit_window: timedelta = EDIT_WINDOW,
) -> list[Outgoing]:
    """The messages for one chat's pending rows, in row order; every row in exactly one."""
    if len(rows) > THREAD_BATCH or not threads:
        return _digest(chat_id, rows, lang, tz, lookup)
    out: list[Outgoing] = []
    chunk: list[OutboxRow] = []
    for row in rows:
        thread = threads.get(row.event.key)
        if thread is None or row.event.kind not in FOLLOW_KINDS:
            chunk.append(row)
            continue
        out += _digest(chat_id, chunk, lang, tz, lookup)
        chunk = []
        (message,) = compose(chat_id, [row], lang, tz, lookup)
        if _editable(row, thread, now, edit_window):
            out.append(Outgoing(message, edit_of=thread.message_id, keys=(thread.key,)))
        else:
            out.append(Outgoing(message, reply_to=thread.message_id, keys=(thread.key,)))
    return out + _digest(chat_id, chunk, lang, tz, lookup)


def _editable(row: OutboxRow, thread: Thread, now: datetime, window: timedelta) -> bool:
    return (
        row.event.kind is EventKind.ESCALATED
        and thread.single
        and timedelta(0) <= now - thread.opened_at <= window
    )


def _digest(
    chat_id: int, rows: Sequence[OutboxRow], lang: str, tz: tzinfo, lookup: OntLookup
) -> list[Outgoing]:
    if not rows:
        return []
    by_id = {r.id: r for r in rows}
    return [
        Outgoing(m, keys=tuple(by_id[i].event.key for i in m.row_ids))
        for m in compose(chat_id, rows, lang, tz, lookup)
    ]


def changes(item: Outgoing, rows: Mapping[int, OutboxRow], message_id: int) -> list[ThreadChange]:
    """The thread roots an Outgoing opened or ended, once sent as message_id."""
    events = [rows[i].event for i in item.message.row_ids if i in rows]
    single = len(events) == 1
    out: list[ThreadChange] = []
    for event in events:
        if event.kind in ROOT_KINDS and item.edit_of is None:
            out.append(ThreadChange(event.key, message_id, single))
        elif event.kind in END_KINDS:
            out.append(ThreadChange(event.key, None))
    return out
