"""One incident, one thread: the opening message is edited on a quick escalation, replied to later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import threads
from monitor.model import Event, EventKind, Ont, Reason, ReasonCode, Severity, Status
from monitor.ports import OutboxRow
from monitor.prober import Prober
from monitor.sweep import Sweeper, detect_icmp_mode
from storage.outbox import BotMessages, OutboxStore
from tests.netfilter import is_loopback, missing_privileges, nft_table, silence_rule

from .conftest import GROUP, Start

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def row(
    n: int, kind: EventKind, ont: str = "1", severity: Severity = Severity.WARNING
) -> OutboxRow:
    event = Event(kind, severity, NOW, Reason(ReasonCode.WENT_OFF), ont_id=ont, area="Baciro")
    payload = {"ont": {"id": ont, "name": f"Rumah {ont}", "area": "Baciro"}}
    return OutboxRow(n, n, GROUP, 0, event, payload)


def root(key: str = "1", age: float = 10, single: bool = True) -> threads.Thread:
    return threads.Thread(key, 77, NOW - timedelta(seconds=age), single)


@pytest.mark.parametrize(
    ("kind", "thread", "want"),
    [
        (EventKind.ESCALATED, root(age=10), "edit"),  # soon after the opening: in place
        (EventKind.ESCALATED, root(age=400), "reply"),  # later: a reply
        (EventKind.ESCALATED, root(single=False), "reply"),  # the root is a digest: never edit
        (EventKind.REMINDER, root(), "reply"),
        (EventKind.RESOLVED, root(), "reply"),
        (EventKind.FLAPPING, root(), "reply"),
        (EventKind.RESOLVED, None, "new"),  # no thread known: a message of its own
        (EventKind.OPENED, root(), "new"),  # a new incident opens a new thread
    ],
)
def test_plan_per_kind(kind: EventKind, thread: threads.Thread | None, want: str) -> None:
    known = {"1": thread} if thread else {}
    (out,) = threads.plan(
        GROUP, [row(1, kind)], known, lang="id", tz=UTC, lookup=lambda i: None, now=NOW
    )
    got = "edit" if out.edit_of else "reply" if out.reply_to else "new"
    assert got == want
    if got != "new":
        assert (out.edit_of or out.reply_to) == 77


def test_plan_keeps_order_and_every_row_once() -> None:
    rows = [
        row(1, EventKind.OPENED, "2"),
        row(2, EventKind.RESOLVED, "1"),
        row(3, EventKind.OPENED, "3"),
    ]
    out = threads.plan(
        GROUP, rows, {"1": root()}, lang="id", tz=UTC, lookup=lambda i: None, now=NOW
    )
    assert [o.message.row_ids for o in out] == [(1,), (2,), (3,)]
    assert out[1].reply_to == 77 and out[0].reply_to is None


def test_big_batch_is_one_digest_not_a_reply_each() -> None:
    rows = [row(i, EventKind.RESOLVED, str(i)) for i in range(1, 40)]
    known = {str(i): root(str(i)) for i in range(1, 40)}
    out = threads.plan(GROUP, rows, known, lang="id", tz=UTC, lookup=lambda i: None, now=NOW)
    assert len(out) == 1 and out[0].reply_to is None
    assert sorted(out[0].message.row_ids) == list(range(1, 40))


def test_changes_open_and_end_threads() -> None:
    opened = threads.Outgoing(
        threads.compose(GROUP, [row(1, EventKind.OPENED)], "id", UTC, lambda i: None)[0]
    )
    assert threads.changes(opened, {1: row(1, EventKind.OPENED)}, 5) == [
        threads.ThreadChange("1", 5, True)
    ]
    resolved = threads.Outgoing(opened.message, reply_to=5)
    assert threads.changes(resolved, {1: row(1, EventKind.RESOLVED)}, 6) == [
        threads.ThreadChange("1", None)
    ]


async def test_single_ont_one_message_edited_to_critical_then_recovery_replies(
    start_bot: Start,
) -> None:
    h = await start_bot(lang="id")
    await h.push("1", Status.OFF, 1)  # warning
    first = await h.fake.wait_for_message(GROUP, "Baciro RT 1", timeout=10)
    assert await h.runtime.sink.idle(10)
    h.clock.advance(seconds=10)
    await h.push("1", Status.OFF, 3)  # rto reaches 3: critical
    edit = await h.fake.wait_for(lambda c: c.method.lower() == "editmessagetext", timeout=10)
    assert edit.chat_id == GROUP and edit.params["message_id"] == first.message_id
    assert "KRITIS" in (edit.visible_text or "")
    assert await h.runtime.sink.idle(10)
    h.clock.advance(minutes=2)
    await h.push("1", Status.ON, 0)  # recovery
    rec = await h.fake.wait_for(
        lambda c: c.method.lower() == "sendmessage" and c.message_id != first.message_id, timeout=10
    )
    assert rec.result["reply_to_message"]["message_id"] == first.message_id
    assert "PULIH" in (rec.visible_text or "").upper()
    assert len(h.fake.messages_to(GROUP)) == 2  # one message for the incident, one reply
    assert await h.runtime.sink.idle(10)
    rows = await OutboxStore(h.db).rows(GROUP)
    assert [r["message_id"] for r in rows] == [first.message_id, first.message_id, rec.message_id]
    assert await BotMessages(h.db).threads(GROUP) == []  # the recovery ended the thread


async def test_thread_survives_a_restart_and_late_escalation_replies(start_bot: Start) -> None:
    first = await start_bot(edit_window=0)
    await first.push("2", Status.OFF, 1)
    root_msg = await first.fake.wait_for_message(GROUP, "Baciro RT 2", timeout=10)
    assert await first.runtime.sink.idle(10)
    fake, clock = first.fake, first.clock
    await first.runtime.stop()
    await first.engine.stop()
    await first.db.close()
    second = await start_bot(fake=fake, clock=clock, onts=[], edit_window=0)
    clock.advance(minutes=1)
    await second.push("2", Status.OFF, 3)  # escalation after the window: a reply
    esc = await fake.wait_for(
        lambda c: c.method.lower() == "sendmessage" and c.message_id != root_msg.message_id,
        timeout=10,
    )
    assert esc.result["reply_to_message"]["message_id"] == root_msg.message_id
    assert fake.edits_to(GROUP) == []


@pytest.mark.privileged
@pytest.mark.skipif(detect_icmp_mode() == "none", reason="no ICMP socket allowed here")
@pytest.mark.skipif(missing_privileges("nft") is not None, reason="nft needs privileges")
async def test_one_ont_silenced_by_probing_is_one_thread(start_bot: Start) -> None:
    """Real ICMP on loopback, silence by an nftables drop rule: the group reads one thread."""
    ont = Ont(id="9", name="Rumah Probe", area="Kidul", ip="127.2.9.1")
    h = await start_bot(onts=[ont], lang="id")
    sweeper = Sweeper(timeout=0.3, allowed=is_loopback)  # the guard: loopback only
    prober = Prober(h.engine, sweeper, interval=5, clock=h.clock)
    try:
        await prober.sweep_once()  # answers: nothing to say
        with nft_table(silence_rule("127.2.9.0/24")):
            for _ in range(3):  # warning at the first silent sweep, critical at rto 3
                h.clock.advance(seconds=5)
                await prober.sweep_once()
                assert await h.runtime.sink.idle(10)
        h.clock.advance(seconds=5)
        await prober.sweep_once()  # answers again: recovered
        assert await h.runtime.sink.idle(10)
    finally:
        sweeper.close()
    sent = h.fake.messages_to(GROUP)
    edits = h.fake.edits_to(GROUP)
    assert len(sent) == 2, [c.visible_text for c in sent]  # the opening and the recovery
    root_id = sent[0].message_id
    assert [e.params["message_id"] for e in edits] == [root_id]
    assert "KRITIS" in (edits[0].visible_text or "")
    assert sent[1].result["reply_to_message"]["message_id"] == root_id
    assert "PULIH" in (sent[1].visible_text or "").upper()
