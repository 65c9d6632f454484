"""The seat map app in a real browser: a 20,000-seat venue, loaded, zoomed, panned and live.

    DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python scripts/backing_services.py \\
        exec -- .venv/bin/python bench/seatmap.py

Needs the built app (`make install`) and Chromium (`make browser`, or SEATS_CHROMIUM).
A throwaway database gets one event with ``--seats`` seats (default 20,000: 8 sections of
50 rows × 50 seats), ``--taken`` of them held or reserved through the write side; a daphne
on a free port serves it, with the outbox relay and the gateway bridge in threads. Then a
headless Chromium (software rendering: no GPU here, so a slow machine's figures):

(a) open the event page, twice (the server's caches cold, then warm): time until it shows
    "Live" (layout + snapshot fetched, first frame drawn), what it fetched, the JS heap;
(b) 40 wheel zooms and 40 drag steps: the app's own draw times (the "seatmap-draw" user
    timing measures of frontend/src/map/) and the frame intervals the page saw;
(c) live: ``--rate`` holds per second for ``--seconds`` from new buyers over HTTP; the
    draw times, how many seat events the page applied, and the heap at the end.

Prints figures; never asserts timings (README, Benchmarks).
"""

import argparse
import http.client
import json
import os
import random
import threading
import time

from support import (
    NO_BUYER_LIMITS,
    RUN,
    SEAT_TOPIC,
    STATS_TOPIC,
    Server,
    bench_database_create,
    bench_database_drop,
    bench_env_setup,
    bench_topics_delete,
    percentile,
    redis_cleanup,
    relay_and_bridge_start,
)

bench_env_setup(
    defaults={"DJANGO_DEBUG": "false"},
    KAFKA_TOPIC_SEAT_EVENTS=SEAT_TOPIC,
    KAFKA_TOPIC_STATS_EVENTS=STATS_TOPIC,
)

CHROMIUM = os.environ.get("SEATS_CHROMIUM", "/usr/bin/chromium")
SECTIONS, ROWS, PER_ROW = 8, 50, 50

# Records every animation frame's time until window.__benchFrames is read.
FRAME_RECORDER = """() => {
  window.__benchFrames = [];
  const tick = (t) => { window.__benchFrames.push(t); requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""
DRAWS = "() => performance.getEntriesByName('seatmap-draw').map(e => e.duration)"
RESOURCES = """() => performance.getEntriesByType('resource')
  .filter(e => e.name.includes('/api/') || e.name.includes('/assets/'))
  .map(e => [new URL(e.name).pathname, e.duration, e.transferSize])"""


def event_create(seats: int, taken: float) -> tuple[int, list[str]]:
    """The venue, on sale, with ``taken`` of its seats held or reserved; the free seats."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from apps.reservations import services
    from apps.reservations.layouts import SeatGrid
    from apps.reservations.models import Event, PriceCategory, Section, Venue

    venue = Venue.objects.create(name=f"Bench stadium {RUN}", focal_x=1100.0, focal_y=-100.0)
    rows = max(1, seats // (SECTIONS * PER_ROW))
    for n in range(SECTIONS):
        category = PriceCategory.objects.create(
            venue=venue, name=f"Band {n}", price=Decimal(40 + 10 * n)
        )
        section = Section.objects.create(venue=venue, name=f"S{n}", category=category)
        grid = SeatGrid(
            rows=rows,
            seats_per_row=PER_ROW,
            layout="offset",
            x=(n % 4) * 560.0,
            y=(n // 4) * (rows * 12.0 + 60),
        )
        services.section_seats_generate(section=section, grid=grid)
    event = Event.objects.create(
        venue=venue,
        name=f"Bench show {RUN}",
        starts_at=timezone.now() + timedelta(days=30),
        sale_status=Event.SaleStatus.DRAFT,
        hold_ttl_seconds=3600,  # nothing expires mid-run
    )
    services.event_open_sale(event=event)
    keys = list(venue.seats.order_by("section_id", "row", "number").values_list("key", flat=True))
    rng = random.Random(7)
    taken_keys = set()
    i = 0
    while len(taken_keys) < int(len(keys) * taken):
        group = keys[i : i + rng.randint(1, 6)]
        i += len(group) + rng.randint(0, 4)
        if i >= len(keys):
            break
        hold = services.hold_create(event_id=event.pk, holder=f"session:b{i}", seats=group)
        if rng.random() < 0.5:
            services.hold_reserve(token=hold.token, holder=f"session:b{i}")
        taken_keys.update(group)
    return event.pk, [k for k in keys if k not in taken_keys]


def holds_stream(port: int, event_id: int, free: list[str], rate: float, seconds: float) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    interval, start, made = 1.0 / rate, time.perf_counter(), 0
    for n in range(int(rate * seconds)):
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        conn.request(
            "POST",
            f"/api/events/{event_id}/holds",
            body=json.dumps({"seats": free[2 * n : 2 * n + 2]}),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        response = conn.getresponse()
        response.read()
        made += response.status == 201
    return made


def ms_line(label: str, values: list[float]) -> str:
    v = sorted(values)
    if not v:
        return f"  {label}: none"
    return (
        f"  {label}: p50 {percentile(v, 0.5):.1f} ms, p95 {percentile(v, 0.95):.1f} ms, "
        f"max {v[-1]:.1f} ms (n={len(v)})"
    )


def heap_mb(cdp) -> float:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["JSHeapUsedSize"] / 1e6


def browse(port: int, event_id: int, free: list[str], args) -> None:
    from playwright.sync_api import sync_playwright

    url = f"http://127.0.0.1:{port}/events/{event_id}/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # Twice, each in a fresh browser context (empty HTTP cache): the first open meets
        # the server's per-process caches cold, the second is what later buyers get.
        for label in ("cold server", "warm server"):
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            began = time.perf_counter()
            page.goto(url)
            page.get_by_test_id("connection").filter(has_text="Live").wait_for(timeout=60_000)
            page.wait_for_function("() => performance.getEntriesByName('seatmap-draw').length > 0")
            loaded = time.perf_counter() - began
            print(f"(a) {label}: page open → Live with the map drawn: {loaded * 1000:.0f} ms")
            for name, duration, size in page.evaluate(RESOURCES):
                print(f"    {name}: {duration:.0f} ms, {size / 1000:.0f} kB over the wire")
            print(f"    JS heap used: {heap_mb(cdp):.1f} MB")

        page.evaluate("() => performance.clearMeasures('seatmap-draw')")
        page.evaluate(FRAME_RECORDER)
        box = page.get_by_role("application").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx, cy)
        for n in range(40):
            page.mouse.wheel(0, -120 if n < 25 else 120)
            page.wait_for_timeout(16)
        page.mouse.down()
        for n in range(40):
            page.mouse.move(cx + 6 * n, cy + 3 * n)
            page.wait_for_timeout(16)
        page.mouse.up()
        page.wait_for_timeout(200)
        frames = page.evaluate("() => window.__benchFrames")
        intervals = [b - a for a, b in zip(frames, frames[1:], strict=False)]
        print("(b) zoom and pan")
        print(ms_line("draw", page.evaluate(DRAWS)))
        print(ms_line("frame interval", intervals))

        page.evaluate("() => performance.clearMeasures('seatmap-draw')")
        made = holds_stream(port, event_id, free, args.rate, args.seconds)
        page.wait_for_timeout(3_000)  # the last events through relay, broker and bridge
        print(f"(c) live: {made} holds at {args.rate:g}/s for {args.seconds:g} s")
        print(ms_line("draw", page.evaluate(DRAWS)))
        print(f"    JS heap used: {heap_mb(cdp):.1f} MB")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seats", type=int, default=20_000)
    parser.add_argument("--taken", type=float, default=0.3)
    parser.add_argument("--rate", type=float, default=40.0, help="holds per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    from apps.core.kafka import topics_ensure

    print(f"seat map bench {RUN}: {args.seats:,} seats, {args.taken:.0%} taken, Chromium")
    bench_database_create()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    server = None
    try:
        topics_ensure([SEAT_TOPIC, STATS_TOPIC])
        event_id, free = event_create(args.seats, args.taken)
        server = Server(NO_BUYER_LIMITS)
        threads = relay_and_bridge_start(stop, group_id=f"bench-seatmap-{RUN}")
        server.wait_ready()
        time.sleep(8)  # the bridge's first consumer-group join
        browse(server.port, event_id, free, args)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        if server is not None:
            server.stop(keep_log=os.environ.get("BENCH_KEEP_LOG") is not None)
        bench_database_drop()
        redis_cleanup()
        bench_topics_delete()


if __name__ == "__main__":
    main()
