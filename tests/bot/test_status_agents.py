"""/status's probe agents: a real bot against the fake Bot API, agents read through the view."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.replies import AGENT_LINES, agents_text
from bot.texts import when
from monitor.agents import AgentStatus, SweepStats
from tests.bot.conftest import Start
from tests.i18n.language import english_in

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class Board:
    """What engine.agents offers the read side (the desk's AgentBoard), with fixed statuses."""

    def __init__(self, statuses: Sequence[AgentStatus]) -> None:
        self._statuses = list(statuses)

    def statuses(self) -> list[AgentStatus]:
        return list(self._statuses)

    def assigned(self) -> frozenset[str]:
        return frozenset()

    async def refresh(self) -> None:
        """Nothing to bring up to date: the assignment is fixed."""


def fleet(now: datetime) -> list[AgentStatus]:
    """One agent in each state; the first has a name full of HTML specials."""
    sweep = SweepStats(at=now, duration=0.84, targets=1240, replied=1240, silent=0)
    held = SweepStats(at=now, duration=1.5, targets=30, replied=0, silent=30, held=True)
    return [
        AgentStatus(
            name="POP<1>&", onts=1240, last_contact=now - timedelta(seconds=4), sweep=sweep
        ),
        AgentStatus(
            name="POP-2",
            onts=880,
            last_contact=now - timedelta(minutes=2),
            lost=True,
            lost_since=now - timedelta(minutes=1, seconds=45),
            sweep=sweep,
            queue_depth=17,
        ),
        AgentStatus(name="POP-3", onts=30, last_contact=now, sweep=held),
        AgentStatus(name="POP-4", onts=0, revoked=True),
        AgentStatus(name="POP-5", onts=12),
    ]


async def test_no_agent_no_section(start_bot: Start) -> None:
    h = await start_bot()
    text = (await h.command("/status")).visible_text
    assert "Total 4" in text
    assert "agent" not in text.lower()


async def test_agents_listed_with_state_contact_sweep_queue(start_bot: Start) -> None:
    h = await start_bot()
    h.engine.agents = Board(fleet(h.clock()))
    sent = await h.command("/status")
    text = sent.visible_text
    section = text[text.index("Probe agents") :]
    lines = section.splitlines()
    assert "• POP<1>& · ✅ ok" in lines
    assert "    1240 ONTs · last contact 4 s ago · sweep 0.84 s · queue 0" in lines
    assert "&lt;1&gt;&amp;" in sent.text  # escaped in what was sent, shown plainly
    # the ManualClock's 01:00 UTC is 08:00 WIB; lost 1 min 45 s before
    assert "• POP-2 · ❌ lost since 27-11-2026 07:58 WIB" in lines
    assert "    880 ONTs · last contact 2 min ago · sweep 0.84 s · queue 17" in lines
    assert "• POP-3 · 🛑 cannot reach its ONTs" in lines
    assert "• POP-4 · ⛔ revoked" in lines
    assert "    0 ONTs · last contact never · sweep - · queue 0" in lines
    assert "• POP-5 · ⏳ no report yet" in lines
    assert section.index("POP<1>&") < section.index("POP-2") < section.index("POP-5")


async def test_agents_in_indonesian_have_no_english(start_bot: Start) -> None:
    h = await start_bot(lang="id")
    h.engine.agents = Board(fleet(h.clock()))
    text = (await h.command("/status")).visible_text
    section = text[text.index("Agen probe") :]
    assert "• POP-2 · ❌ hilang sejak 27-11-2026 07:58 WIB" in section
    assert "1240 ONT · kontak terakhir 4 dtk lalu · sapuan 0,84 dtk · antrean 0" in section
    assert "belum pernah melapor" in section and "dicabut" in section
    names = {s.name for s in fleet(h.clock())}
    for name in names:
        section = section.replace(name, "")
    assert english_in(section) == []


async def test_status_follows_the_desk_as_it_changes(start_bot: Start) -> None:
    """The section is read at each /status: an agent that comes back shows ok again."""
    h = await start_bot()
    now = h.clock()
    board = Board([AgentStatus(name="POP-9", onts=5, lost=True, lost_since=now)])
    h.engine.agents = board
    assert "❌ lost since" in (await h.command("/status")).visible_text
    board._statuses = [AgentStatus(name="POP-9", onts=5, last_contact=now)]
    text = (await h.command("/status")).visible_text
    assert "• POP-9 · ✅ ok" in text and "lost since" not in text


def test_many_agents_are_cut_and_counted() -> None:
    now = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    statuses = [AgentStatus(name=f"POP-{i:03d}", onts=i) for i in range(AGENT_LINES + 7)]
    text = agents_text(statuses, "en", ZoneInfo("Asia/Jakarta"), now)
    assert text.count("• <b>POP-") == AGENT_LINES
    assert text.endswith("… and 7 more")
    assert agents_text([], "en", ZoneInfo("Asia/Jakarta"), now) == ""


async def test_status_with_the_real_desk(start_bot: Start) -> None:
    """The desk on the bot's own database: a report makes the agent ok, silence makes it lost."""
    from monitor.agents import AgentDesk, AgentReport
    from storage.agents import Agents

    h = await start_bot()
    table = Agents(h.db)
    await table.add("POP-1", ["Baciro"], [], h.clock())
    desk = AgentDesk(table, h.engine, h.clock, lost_after=3.0, default_interval=5.0)
    await desk.start()
    h.engine.agents = desk
    try:
        text = (await h.command("/status")).visible_text
        assert "• POP-1 · ⏳ no report yet" in text and "2 ONTs · last contact never" in text
        now = h.clock()
        sweep = SweepStats(at=now, duration=0.31, targets=2, replied=2, silent=0)
        obs = [("1", now, 0), ("2", now, 0)]
        report = AgentReport("e1", 1, now, 5.0, "", True, sweep, 4, None, 0, obs)
        assert (await desk.report("POP-1", report)).accepted == 2
        h.clock.advance(seconds=3)
        text = (await h.command("/status")).visible_text
        assert "• POP-1 · ✅ ok" in text
        assert "2 ONTs · last contact 3 s ago · sweep 0.31 s · queue 4" in text
        h.clock.advance(seconds=30)
        assert await desk.check() == ["POP-1"]
        lost_at = when(h.clock(), h.settings.tz)
        text = (await h.command("/status")).visible_text
        assert f"• POP-1 · ❌ lost since {lost_at}" in text
        assert "last contact 33 s ago" in text
    finally:
        await desk.stop()
