"""Push-to-page latency in real headless Chromium: HTTP answer -> the change drawn in the page.

    .venv/bin/python bench/page_latency_bench.py              # 100 pushes
    .venv/bin/python bench/page_latency_bench.py --pushes 300 --onts 1000

A real `ontwatch run` on a free loopback port (own temp database, local tile server, probing
off) and two Chromium windows: /map?cluster=0 and the dashboard /. Each push turns one more
ONT OFF; a MutationObserver in each page records (performance.timeOrigin + performance.now())
the moment that ONT's marker carries data-status="OFF" (map) and #stat-offline shows the new
count (dashboard). Latency = that moment - the moment the push's HTTP answer arrived
(time.time() in this process; both are the machine's wall clock, the offset between the two
measured before the run). Pushes are sequential: the next one goes after both pages showed the
last (or after --miss-after seconds, counted as a miss). Also the frame after the change
(requestAnimationFrame, then a task): when it is on the screen. Prints p50/p95/max, next to the older
system, which polled every 5 s (map) and every 30 s (counts). Target: p95 < 500 ms.
Nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.chrome import (
    chromium_missing,
    clock_offset,
    console_errors,
    new_driver,
)
from tests.browser.live import inventory, start_service
from tests.fakes.tile_server import ThreadedTileServer

MAX_PUSHES = 2000
OBSERVE = """
window.__seen = {};
window.__painted = {};
window.__expect = null;
const check = () => {
  const e = window.__expect;
  if (!e || window.__seen[e.seq] !== undefined) return;
  const ok = e.kind === 'map'
    ? document.querySelector(`.ont-marker[data-ont-id="${e.id}"]`)?.dataset.status === 'OFF'
    : document.getElementById('stat-offline')?.textContent.trim() === String(e.offline);
  if (!ok) return;
  window.__seen[e.seq] = performance.timeOrigin + performance.now();
  // painted: the frame after the change (a timer backs up a frame that never comes)
  const seq = e.seq;
  const paint = () => { if (window.__painted[seq] === undefined)
    window.__painted[seq] = performance.timeOrigin + performance.now(); };
  requestAnimationFrame(() => setTimeout(paint, 0));
  setTimeout(paint, 1000);
};
window.__check = check;
new MutationObserver(check).observe(document.body,
  {subtree: true, childList: true, attributes: true, characterData: true});
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(name: str, values: list[float], misses: int) -> str:
    if not values:
        return f"{name:<26} no change observed ({misses} misses)"
    return (
        f"{name:<26} p50 {statistics.median(values):6.0f} ms  p95 {percentile(values, 0.95):6.0f} ms"
        f"  max {max(values):6.0f} ms  ({len(values)} seen, {misses} missed)"
    )


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="page-latency-") as tmp, ThreadedTileServer() as tiles:
        live = start_service(Path(tmp), tiles.url_template)
        drivers: dict[str, WebDriver] = {}
        try:
            live.import_onts(inventory(args.onts))
            drivers = {"map": new_driver(), "dashboard": new_driver()}
            drivers["map"].get(live.url("/map?cluster=0"))
            drivers["dashboard"].get(live.url("/"))
            for d in drivers.values():
                deadline = time.monotonic() + 20
                while d.execute_script(
                    "return document.getElementById('live-status').dataset.state"
                ) != "connected" or d.execute_script(
                    "const m = document.getElementById('map'); return m && !m.dataset.ready"
                ):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{d.current_url} not ready")
                    time.sleep(0.05)
                d.execute_script(OBSERVE)
            offsets = {k: clock_offset(d) for k, d in drivers.items()}
            lat: dict[str, list[float]] = {k: [] for k in drivers}
            painted: dict[str, list[float]] = {k: [] for k in drivers}
            misses = dict.fromkeys(drivers, 0)
            started = time.monotonic()
            for seq in range(args.pushes):
                ont_id = str(seq + 1)
                for kind, d in drivers.items():
                    d.execute_script(
                        "window.__expect = {seq: arguments[0], kind: arguments[1], id: arguments[2],"
                        " offline: arguments[3]}; window.__check();",
                        seq, kind, ont_id, seq + 1,
                    )  # fmt: skip
                live.push(ont_id, "OFF", 1)
                answered = time.time() * 1000
                deadline = time.monotonic() + args.miss_after
                pending = set(drivers)
                while pending and time.monotonic() < deadline:
                    for kind in list(pending):
                        seen = drivers[kind].execute_script(
                            "return [window.__seen[arguments[0]] ?? null,"
                            " window.__painted[arguments[0]] ?? null]",
                            seq,
                        )
                        if seen[1] is not None:
                            lat[kind].append(float(seen[0]) - offsets[kind] - answered)
                            painted[kind].append(float(seen[1]) - offsets[kind] - answered)
                            pending.discard(kind)
                    time.sleep(0.01)
                for kind in pending:
                    misses[kind] += 1
                time.sleep(args.gap)
            elapsed = time.monotonic() - started
            errors = [(k, e.message) for k, d in drivers.items() for e in console_errors(d)]
        finally:
            for d in drivers.values():
                d.quit()
            live.stop()
    print(
        f"page latency: {args.pushes} sequential pushes (one more ONT OFF each) into "
        f"{args.onts} ONTs, headless Chromium {elapsed:.1f} s; "
        f"clock offsets page-bench {', '.join(f'{k} {v:+.1f} ms' for k, v in offsets.items())}"
    )
    print("in the DOM (MutationObserver):")
    print(summary("  /map marker data-status", lat["map"], misses["map"]))
    print(summary("  / #stat-offline", lat["dashboard"], misses["dashboard"]))
    print("painted (the frame after):")
    print(summary("  /map marker data-status", painted["map"], misses["map"]))
    print(summary("  / #stat-offline", painted["dashboard"], misses["dashboard"]))
    lows = [min(v) for v in lat.values() if v]
    print(f"earliest change relative to the HTTP answer: {min(lows):.0f} ms" if lows else "")
    print("older system (polling):    map every 5 s (mean wait 2,500 ms, worst 5,000 ms);")
    print("                           counts every 30 s (mean wait 15,000 ms, worst 30,000 ms)")
    worst_p95 = (
        max(percentile(v, 0.95) for v in painted.values() if v) if any(painted.values()) else 1e9
    )
    verdict = "met" if worst_p95 < 500 and not any(misses.values()) else "NOT met"
    print(f"target p95 < 500 ms (painted) on both pages: {verdict}")
    if errors:
        print(f"browser console errors: {errors[:5]}")
    return 0 if verdict == "met" and not errors else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pushes", type=int, default=100, help=f"pushes (at most {MAX_PUSHES})")
    ap.add_argument("--onts", type=int, default=500, help="ONTs in the inventory")
    ap.add_argument("--gap", type=float, default=0.05, help="pause after each push (s)")
    ap.add_argument("--miss-after", type=float, default=3.0, help="give up on a push after (s)")
    args = ap.parse_args()
    args.pushes = max(1, min(args.pushes, MAX_PUSHES, args.onts))
    why = chromium_missing()
    if why:
        print(f"page latency bench: {why}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
