import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FREE, HELD, MINE, RESERVED } from "../protocol/seatState";
import { FakeSocket, fakeTimers, resetFakes } from "../testing/fakeSocket";
import { envelope, snapshot, stats, testVenue } from "../testing/fixtures";
import { figures, place } from "../testing/roomFixtures";
import { LiveFeed, type FeedUpdate } from "./liveFeed";

const venue = testVenue();
const at = (key: string) => venue.indexByKey.get(key)!;
const changes = (...items: unknown[]) => ({ type: "changes", event_id: 7, items });

function feed(token: string | null = null) {
  const updates: FeedUpdate[] = [];
  let pending: (() => void) | null = null;
  const live = new LiveFeed({
    venue,
    url: "ws://test/ws/events/7/",
    myToken: () => token,
    onUpdate: (u) => updates.push(u),
    // A frame happens when the test says so.
    schedule: (callback) => {
      pending = callback;
      return () => (pending = null);
    },
    socket: { createSocket: (url) => new FakeSocket(url), timers: fakeTimers, random: () => 1 },
  });
  live.start();
  const frame = () => {
    const run = pending;
    pending = null;
    run?.();
  };
  return { live, updates, frame, last: () => updates[updates.length - 1] };
}

beforeEach(resetFakes);
afterEach(() => vi.useRealTimers());

describe("LiveFeed", () => {
  it("applies a frame's messages together and reports Live only with a map", () => {
    const { updates, frame, last } = feed("mine");
    const ws = FakeSocket.latest();
    ws.open();
    frame();
    expect(last().status.kind).toBe("connecting");
    ws.receive(snapshot(10));
    ws.receive(envelope("seat.held", 11, ["A-1-1"], { hold_token: "mine" }));
    ws.receive(envelope("seat.held", 12, ["A-1-2"], { hold_token: "other" }));
    ws.receive({ type: "stats.updated", event_id: 7, seq: 12, data: stats(12, 16) });
    expect(updates).toHaveLength(1);
    frame();
    expect(updates).toHaveLength(2);
    const update = last();
    expect(update.status.kind).toBe("live");
    expect(update.snapshot).toBe(true);
    expect(update.applied.map((e) => e.seq)).toEqual([11, 12]);
    expect(update.state!.codes[at("A-1-1")]).toBe(MINE);
    expect(update.state!.codes[at("A-1-2")]).toBe(HELD);
    expect(update.state!.stats.free).toBe(16);
  });

  it("on a gap sends resync once, ignores seat events, and recovers with the next snapshot", () => {
    const { frame, last } = feed();
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive(snapshot(10));
    frame();
    ws.receive(envelope("seat.held", 13, ["A-1-1"]));
    frame();
    ws.receive(envelope("seat.held", 14, ["A-1-2"]));
    ws.receive(envelope("seat.held", 15, ["A-1-3"]));
    frame();
    expect(ws.sentOfType("resync")).toHaveLength(1);
    expect(last().state!.seq).toBe(10);
    expect(last().state!.codes[at("A-1-2")]).toBe(0);

    ws.receive(snapshot(15, { "A-1-1": "h", "A-1-2": "h", "A-1-3": "h" }));
    ws.receive(envelope("seat.released", 16, ["A-1-1"]));
    frame();
    expect(last().state!.seq).toBe(16);
    expect(last().state!.codes[at("A-1-1")]).toBe(0);
    expect(last().state!.codes[at("A-1-3")]).toBe(HELD);

    ws.receive(envelope("seat.held", 20, ["A-1-1"])); // a later gap asks again
    frame();
    vi.advanceTimersByTime(1000);
    expect(ws.sentOfType("resync")).toHaveLength(2);
  });

  it("a reconnect's snapshot replaces the map", () => {
    const { frame, last } = feed();
    FakeSocket.latest().open();
    FakeSocket.latest().receive(snapshot(10, { "B-1-1": "r" }));
    frame();
    FakeSocket.latest().serverClose(1006);
    frame();
    expect(last().status.kind).toBe("reconnecting");
    vi.advanceTimersByTime(500);
    const again = FakeSocket.latest();
    again.open();
    again.receive(snapshot(3, { "B-1-2": "b" })); // a lower seq too: it is a new map
    frame();
    expect(last().status.kind).toBe("live");
    expect(last().state!.seq).toBe(3);
    expect(last().state!.codes[at("B-1-1")]).toBe(0);
    expect(last().state!.codes[at("B-1-2")]).toBe(4);
  });

  it("applies a changes frame's items in order, as if each had come alone", () => {
    const { frame, last } = feed("mine");
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive(snapshot(10));
    frame();
    ws.receive(
      changes(
        envelope("seat.held", 11, ["A-1-1", "A-1-2"], { hold_token: "other" }),
        envelope("seat.released", 12, ["A-1-1"], { reason: "released" }),
        { type: "stats.updated", event_id: 7, seq: 12, data: stats(12, 17) },
        envelope("seat.held", 13, ["A-1-1"], { hold_token: "mine" }),
        envelope("seat.released", 14, ["A-1-2"], { reason: "expired" }),
      ),
    );
    ws.receive(envelope("seat.held", 15, ["A-1-3"])); // a plain envelope still applies after it
    frame();
    const update = last();
    expect(update.applied.map((e) => e.seq)).toEqual([11, 12, 13, 14, 15]);
    expect(update.state!.seq).toBe(15);
    expect(update.state!.codes[at("A-1-1")]).toBe(MINE); // held, released, then held by me
    expect(update.state!.codes[at("A-1-2")]).toBe(FREE);
    expect(update.state!.codes[at("A-1-3")]).toBe(HELD);
    expect(update.state!.stats.free).toBe(17);
    expect(ws.sentOfType("resync")).toHaveLength(0);
  });

  it("drops a changes frame's items that the snapshot already covers", () => {
    const { frame, last } = feed();
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive(snapshot(12, { "A-1-1": "r" }, 30));
    ws.receive(
      changes(
        envelope("seat.held", 11, ["A-1-1"]),
        envelope("seat.released", 12, ["A-1-1"]),
        { type: "stats.updated", event_id: 7, seq: 30, data: stats(30, 1) },
        envelope("seat.held", 13, ["A-1-2"]),
        { type: "stats.updated", event_id: 7, seq: 31, data: stats(31, 16) },
      ),
    );
    frame();
    const update = last();
    expect(update.applied.map((e) => e.seq)).toEqual([13]);
    expect(update.state!.codes[at("A-1-1")]).toBe(RESERVED); // still the snapshot's reservation
    expect(update.state!.codes[at("A-1-2")]).toBe(HELD);
    expect(update.state!.statsSeq).toBe(31);
    expect(update.state!.stats.free).toBe(16);
    expect(ws.sentOfType("resync")).toHaveLength(0);
  });

  it("a changes frame that skips a seq asks for a resync once", () => {
    const { frame, last } = feed();
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive(snapshot(10));
    frame();
    ws.receive(
      changes(
        envelope("seat.held", 11, ["A-1-1"]),
        envelope("seat.held", 13, ["A-1-2"]), // 12 is missing
        envelope("seat.held", 14, ["A-1-3"]),
      ),
    );
    ws.receive(changes(envelope("seat.held", 15, ["A-1-4"])));
    frame();
    expect(ws.sentOfType("resync")).toHaveLength(1);
    const state = last().state!;
    expect(last().applied.map((e) => e.seq)).toEqual([11]);
    expect(state.seq).toBe(11);
    expect(state.awaitingSnapshot).toBe(true);
    expect(state.codes[at("A-1-2")]).toBe(FREE);
    expect(state.codes[at("A-1-4")]).toBe(FREE); // ignored until the next snapshot
  });

  it("shows the snapshot's mine seats as mine and others' holds as held", () => {
    const { frame, last } = feed();
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive({
      ...snapshot(10, { "A-1-1": "h", "A-1-2": "h", "A-1-3": "h", "A-1-4": "r" }),
      mine: ["A-1-2", "A-1-3", "A-1-4", "Z-9-9"],
    });
    frame();
    const codes = last().state!.codes;
    expect(codes[at("A-1-1")]).toBe(HELD);
    expect(codes[at("A-1-2")]).toBe(MINE);
    expect(codes[at("A-1-3")]).toBe(MINE);
    expect(codes[at("A-1-4")]).toBe(RESERVED); // listed but reserved since: left as it is
  });

  it("tells the page when the server sends a waiting room instead of the map", () => {
    const onRoom = vi.fn();
    const live = new LiveFeed({
      venue,
      url: "ws://test/ws/events/7/",
      myToken: () => null,
      onUpdate: () => {},
      onRoom,
      schedule: () => () => {},
      socket: { createSocket: (url) => new FakeSocket(url), timers: fakeTimers, random: () => 1 },
    });
    live.start();
    FakeSocket.latest().open();
    FakeSocket.latest().receive({ ...figures(), place: place(4) });
    expect(onRoom).toHaveBeenCalledOnce();
  });
});
