"""Plain one-line summaries of events, for logs and the stored notification message.

The text comes from the event's kind and reason code through i18n/ (Indonesian or English);
recoveries read as recoveries: 'RECOVERED · Baciro RT 9 (id 2): ON again after 4 s down'.
"""

from __future__ import annotations

from i18n import Lang
from i18n.notices import render_event
from monitor.model import Event, Ont


def summarize(event: Event, ont: Ont | None, lang: Lang = "en") -> str:
    """One line saying what happened, e.g. 'WARNING · Baciro RT 9 (id 2): went OFF (...)'."""
    return render_event(event, ont, lang)
