"""Two real `ontwatch run` processes on one PostgreSQL, and a push load that follows the leader.

Why a harness of its own: the failover test must see the service as a client does — it
pushes to whichever instance answers, moves to the other one on a 503 (a standby) or a
refused connection, and counts a push as stored only when it was answered 200. Everything
the test then checks (history rows, delivered alerts, the lease) is read back from the
survivor's API and from the database, never from what the harness assumed.

Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.harness import GROUP, FakeBotProcess, ServiceProcess, bot_env, wait_until

LEASE_SECONDS = 3
PUSH_TIMEOUT = 2.0  # one request; a frozen leader must not hold a client for long
PUSH_PATIENCE = 30.0  # one push: retries on either instance stop after this
ALERT_AREAS = ("Kalasan", "Berbah", "Prambanan", "Depok")
WORDS = {"opened": "WARNING", "resolved": "RECOVERED"}


def failover_env(
    tmp: Path,
    fake: FakeBotProcess,
    tile_url: str,
    pg_url: str,
    name: str,
    lease: float = LEASE_SECONDS,
) -> dict[str, str]:
    """One instance: PostgreSQL, its own name and port, a short lease, the bot on the fake.

    Flapping and mass outages are switched off by their thresholds: the alert ONTs are
    toggled on purpose, and the test counts one message block per transition.
    """
    return bot_env(
        tmp / name,
        fake,
        tile_url,
        ONTWATCH_DB=pg_url,
        ONTWATCH_INSTANCE=name,
        ONTWATCH_LEASE_SECONDS=str(lease),
        ONTWATCH_FLAP_TRANSITIONS="100000",
        ONTWATCH_MASS_MIN_ONTS="100000",
    )


def health(svc: ServiceProcess) -> dict[str, Any]:
    """/healthz of one instance ({} when it does not answer)."""
    try:
        body = svc.get("/healthz")
    except OSError:
        return {}
    return body if isinstance(body, dict) else {}


def role(svc: ServiceProcess) -> str:
    """'leader', 'standby' or '' (not answering / not saying)."""
    return str(health(svc).get("role", ""))


def start_instance(tmp: Path, env: dict[str, str], name: str) -> ServiceProcess:
    """`ontwatch run` for one instance, its log in tmp/NAME.log."""
    (tmp / name).mkdir(parents=True, exist_ok=True)
    return ServiceProcess(env, log=tmp / f"{name}.log")


def wait_role(svc: ServiceProcess, wanted: str, limit: float) -> float:
    """Seconds until svc's /healthz says `wanted` (bounded)."""
    t0 = time.monotonic()
    wait_until(lambda: role(svc) == wanted, limit, f"{svc.base} role {wanted}")
    return time.monotonic() - t0


# -- inventory ------------------------------------------------------------------------------


def inventory(load_onts: int) -> list[dict[str, Any]]:
    """Load ONTs L1..Ln (area Load) and one alert ONT per alert area, every one ON."""
    rows = [
        {"id": f"L{i}", "name": f"Load {i}", "ip": f"127.30.0.{i}", "status": "ON"}
        for i in range(1, load_onts + 1)
    ]
    rows += [
        {"id": f"A{i}", "name": f"{area} {i}", "ip": f"127.31.0.{i}", "status": "ON"}
        for i, area in enumerate(ALERT_AREAS, start=1)
    ]
    rows.append({"id": "P1", "name": "Probe 1", "ip": "127.32.0.1", "status": "ON"})
    for row in rows:
        row.update(latitude=-7.78, longitude=110.45)
    return rows


def alert_label(ont_id: str) -> str:
    """How an alert block names an alert ONT: 'Kalasan 1 (id A1)'."""
    i = int(ont_id[1:])
    return f"{ALERT_AREAS[i - 1]} {i} (id {ont_id})"


# -- pushes ---------------------------------------------------------------------------------


def post(base: str, path: str, body: Any, timeout: float = PUSH_TIMEOUT) -> tuple[int, Any]:
    """One POST with a JSON body on its own connection; OSError when nobody answers."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(payload) if payload else None
    except ValueError:
        return resp.status, None


@dataclass(frozen=True)
class Ack:
    """A push answered 200: what was pushed, the stored time the answer gave, who and when."""

    ont_id: str
    status: str
    rto_count: int
    at: str  # last_seen of the answer: the observation's time, also the history row's
    base: str
    t: float  # monotonic, when the answer came


@dataclass
class Followers:
    """The instances' base URLs and which one the clients try first (shared, racy on purpose)."""

    bases: list[str]
    preferred: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def order(self) -> list[str]:
        with self.lock:
            first = self.preferred
        return [self.bases[(first + k) % len(self.bases)] for k in range(len(self.bases))]

    def prefer(self, base: str) -> None:
        with self.lock:
            self.preferred = self.bases.index(base)


@dataclass
class Outcome:
    """What the load saw: acknowledged pushes, pushes with no answer, and refusals."""

    acks: list[Ack] = field(default_factory=list)
    unanswered: list[tuple[str, str, float]] = field(default_factory=list)  # ont, base, t
    not_connected: int = 0  # attempts refused at connect: nothing was sent
    refused: Counter[int] = field(default_factory=Counter)  # non-200 answers by status
    given_up: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def push_once(
    targets: Followers, out: Outcome, ont_id: str, body: dict[str, Any], stop_at: float
) -> Ack | None:
    """One push, retried on the other instance on a 503 or no answer, until acknowledged.

    Gives up (bounded) after PUSH_PATIENCE seconds or at stop_at; a push that got no answer
    may or may not be stored (the leader may have died after committing it) and is recorded
    as unanswered, never as acknowledged.
    """
    deadline = min(time.monotonic() + PUSH_PATIENCE, stop_at)
    while time.monotonic() < deadline:
        for base in targets.order():
            try:
                code, answer = post(base, f"/api/ont-status/{ont_id}", body)
            except ConnectionRefusedError:
                with out.lock:
                    out.not_connected += 1
                continue
            except OSError:  # sent, then reset or timed out: stored or not, nobody knows
                with out.lock:
                    out.unanswered.append((ont_id, base, time.monotonic()))
                continue
            if code == 200:
                targets.prefer(base)
                ack = Ack(
                    ont_id,
                    body["status"],
                    body["rto_count"],
                    answer["last_seen"],
                    base,
                    time.monotonic(),
                )
                with out.lock:
                    out.acks.append(ack)
                return ack
            with out.lock:
                out.refused[code] += 1
            if code != 503:
                raise AssertionError(f"push {ont_id} {body} -> {code} {answer}")
        time.sleep(0.05)  # both refused or silent: a takeover is under way
    with out.lock:
        out.given_up += 1
    return None


class PushLoad:
    """Client threads pushing until stopped: steady ON pushes on the load ONTs (each a
    history row, no alert), and one thread toggling the alert ONTs OFF/ON (each an alert).

    The load ONTs stay ON so the alert stream stays countable: Telegram allows 20 messages a
    minute in a group, and toggling hundreds of ONTs would queue more alerts than a test can
    wait for. Each ONT is pushed by one thread only, one push at a time, so its acknowledged
    pushes are in order.
    """

    def __init__(
        self,
        targets: Followers,
        *,
        clients: int,
        load_onts: int,
        alert_period: float = 0.6,
        seconds: float = 120.0,
    ) -> None:
        self.targets = targets
        self.out = Outcome()
        self.stop_at = time.monotonic() + seconds
        self._stop = threading.Event()
        mine = [[f"L{i}" for i in range(1 + c, load_onts + 1, clients)] for c in range(clients)]
        self.threads = [
            threading.Thread(target=self._steady, args=(ids,), daemon=True) for ids in mine
        ]
        self.threads.append(
            threading.Thread(target=self._alerts, args=(alert_period,), daemon=True)
        )

    def __enter__(self) -> PushLoad:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Outcome:
        """Stop the clients (each finishes its push in hand, bounded) and return the outcome."""
        self._stop.set()
        for t in self.threads:
            t.join(PUSH_PATIENCE + 5)
        return self.out

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self.stop_at

    def _steady(self, ids: list[str]) -> None:
        k = 0
        while self._running() and ids:
            push_once(self.targets, self.out, ids[k % len(ids)], _ON, self.stop_at)
            k += 1

    def _alerts(self, period: float) -> None:
        """Toggle A1..An in turn, one change every `period` s (each ONT every n*period s)."""
        status = dict.fromkeys((f"A{i}" for i in range(1, len(ALERT_AREAS) + 1)), "ON")
        for ont_id in _cycle(list(status)):
            if not self._running():
                return
            status[ont_id] = "OFF" if status[ont_id] == "ON" else "ON"
            body = _OFF if status[ont_id] == "OFF" else _ON
            if push_once(self.targets, self.out, ont_id, body, self.stop_at) is None:
                status[ont_id] = "OFF" if status[ont_id] == "ON" else "ON"  # may be either
            self._stop.wait(period)


_ON = {"status": "ON", "rto_count": 0}
_OFF = {"status": "OFF", "rto_count": 1}


def _cycle(items: list[str], limit: int = 100_000) -> Iterator[str]:
    """items over and over, bounded."""
    for k in range(limit):
        yield items[k % len(items)]


# -- reading back ---------------------------------------------------------------------------


def history_ats(svc: ServiceProcess, ont_id: str, pages: int = 200) -> list[tuple[str, str]]:
    """(at, status) of every push history row of one ONT, through the API (paged, bounded)."""
    rows: list[tuple[str, str]] = []
    after = ""
    for _ in range(pages):
        code, page = svc.request("GET", f"/api/onts/{ont_id}/history?limit=1000{after}")
        assert code == 200, (ont_id, code, page)
        rows += [(h["at"], h["status"]) for h in page if h["source"] == "push"]
        if len(page) < 1000:
            return rows
        after = f"&after={page[-1]['id']}"
    raise AssertionError(f"history of {ont_id} longer than {pages} pages")


def lost_acks(svc: ServiceProcess, acks: list[Ack]) -> list[Ack]:
    """Acknowledged pushes with no history row of the same time and status."""
    by_ont: dict[str, list[Ack]] = {}
    for ack in acks:
        by_ont.setdefault(ack.ont_id, []).append(ack)
    lost = []
    for ont_id, mine in by_ont.items():
        stored = Counter(history_ats(svc, ont_id))
        lost += [a for a in mine if stored[(a.at, a.status)] == 0]
    return lost


def alert_blocks(texts: list[str], label: str) -> list[tuple[str, str]]:
    """(severity word, block text) of every alert block naming label, in delivery order."""
    out = []
    for text in texts:
        for block in text.split("\n\n"):
            if label in block:
                m = re.search(r"\b(WARNING|RECOVERED|CRITICAL|FLAPPING)\b", block)
                out.append((m.group(1) if m else "?", block))
    return out


@dataclass
class AlertCount:
    """Alerts stored (outbox rows to the group) against alert blocks delivered."""

    stored: int
    delivered: int
    lost: int
    duplicate_blocks: int
    duplicate_messages: int


def count_alerts(fake: FakeBotProcess, stored: dict[str, list[str]]) -> AlertCount:
    """Compare, per alert ONT, the words of its stored outbox rows with the blocks delivered.

    stored maps an alert ONT to the words of its outbox rows to GROUP, in id order (which is
    the order of delivery to one chat). Each ONT alternates WARNING / RECOVERED, so the
    delivered blocks are walked against that list: a block that is not the next one expected
    is a duplicate (a message sent again after a takeover repeats blocks already delivered),
    and what is left unmatched at the end was lost.
    """
    messages = fake.texts(GROUP)
    lost = dup_blocks = total_stored = total_delivered = 0
    dup_messages: set[int] = set()
    for ont_id, words in stored.items():
        matched = 0
        for index, text in enumerate(messages):
            for word, _block in alert_blocks([text], alert_label(ont_id)):
                total_delivered += 1
                if matched < len(words) and words[matched] == word:
                    matched += 1
                else:
                    dup_blocks += 1
                    dup_messages.add(index)
        lost += len(words) - matched
        total_stored += len(words)
    return AlertCount(total_stored, total_delivered, lost, dup_blocks, len(dup_messages))


def stored_alert_words(pg_url: str) -> dict[str, list[str]]:
    """Per alert ONT, the severity word of each outbox row to GROUP, in id order (SQL here is
    the test's own reading of the database, as the issue asks: 'check through the database')."""
    rows = sql(
        pg_url,
        "SELECT n.ont_id, n.kind FROM outbox o JOIN notifications n ON n.id = o.notification_id"
        " WHERE o.chat_id = %s AND n.ont_id LIKE 'A%%' ORDER BY o.id",
        (GROUP,),
    )
    out: dict[str, list[str]] = {f"A{i}": [] for i in range(1, len(ALERT_AREAS) + 1)}
    for ont_id, kind in rows:
        out[ont_id].append(WORDS.get(kind, kind))
    return out


def pending_outbox(pg_url: str) -> int:
    """Outbox rows neither sent nor failed (pending, or claimed and in flight)."""
    return int(
        sql(pg_url, "SELECT count(*) FROM outbox WHERE state NOT IN ('sent', 'failed')")[0][0]
    )


def lease(pg_url: str) -> tuple[str, int]:
    """(holder, epoch) of the lease row."""
    holder, epoch = sql(pg_url, "SELECT holder, epoch FROM leadership")[0]
    return str(holder), int(epoch)


def sql(pg_url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One read of the test's own through psycopg (autocommit, bounded connect)."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn:
        return list(conn.execute(statement, params).fetchall())


def current_xid(pg_url: str) -> int:
    """A transaction id newer than every transaction that has started writing so far."""
    return int(sql(pg_url, "SELECT pg_current_xact_id()::text::bigint")[0][0])


def written_late(pg_url: str, xid: int, stamped_before: datetime) -> dict[str, int]:
    """Rows stamped before `stamped_before` but written by a transaction newer than xid.

    Why this finds a deposed leader's writes: the test takes xid while the old leader is
    frozen and the new one already leads, and stamped_before is when the old leader froze.
    Everything stamped before the freeze was stamped by the old leader (the new one only
    stamps after its takeover); a row of such a stamp in a transaction newer than xid was
    committed by the old leader after it resumed, without its lease: what fencing forbids.
    """
    out = {}
    for table, column in (("history", "at"), ("notifications", "created_at")):
        out[table] = int(
            sql(
                pg_url,
                f"SELECT count(*) FROM {table}"  # table and column: from the tuple above
                f" WHERE xmin::text::bigint > %s AND {column}::timestamptz < %s",
                (xid, stamped_before),
            )[0][0]
        )
    return out
