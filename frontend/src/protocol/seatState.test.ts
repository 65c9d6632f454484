import { describe, expect, it } from "vitest";
import { envelope, snapshot, stats, testVenue } from "../testing/fixtures";
import {
  BLOCKED,
  FREE,
  HELD,
  MINE,
  RESERVED,
  applyBatch,
  applyEnvelope,
  applyStats,
  holdAfterSnapshot,
  isMine,
  seatView,
  stateFromSnapshot,
  statsBody,
  type MyHold,
} from "./seatState";

const venue = testVenue();
const at = (key: string) => venue.indexByKey.get(key)!;

describe("stateFromSnapshot", () => {
  it("maps each state character onto the layout's seat", () => {
    const state = stateFromSnapshot(venue, snapshot(10, { "A-1-2": "h", "A-2-3": "m", "B-1-1": "r", "B-1-2": "b" }));
    expect(state.seq).toBe(10);
    expect(state.codes[at("A-1-1")]).toBe(FREE);
    expect(state.codes[at("A-1-2")]).toBe(HELD);
    expect(state.codes[at("A-2-3")]).toBe(MINE);
    expect(state.codes[at("B-1-1")]).toBe(RESERVED);
    expect(state.codes[at("B-1-2")]).toBe(BLOCKED);
  });

  it("marks the seats in `mine` that the shared states show as held as mine", () => {
    const message = {
      ...snapshot(10, { "A-1-1": "h", "A-1-2": "h", "A-1-3": "r", "A-1-4": "f" }),
      mine: ["A-1-2", "A-1-3", "A-1-4", "Z-9-9"], // Z-9-9 is not in the venue
    };
    const state = stateFromSnapshot(venue, message);
    expect(state.codes[at("A-1-1")]).toBe(HELD); // someone else's hold
    expect(state.codes[at("A-1-2")]).toBe(MINE);
    expect(state.codes[at("A-1-3")]).toBe(RESERVED); // not "h": left as it is
    expect(state.codes[at("A-1-4")]).toBe(FREE);
  });

  it("reads a snapshot without `mine` as having none", () => {
    const state = stateFromSnapshot(venue, snapshot(10, { "A-1-2": "h" }));
    expect(state.codes[at("A-1-2")]).toBe(HELD);
  });

  it("treats seats the snapshot leaves out as not for sale", () => {
    const message = snapshot(3);
    message.seats = message.seats.filter((section) => section.name === "A");
    const state = stateFromSnapshot(venue, message);
    expect(state.codes[at("B-1-1")]).toBe(BLOCKED);
    expect(state.codes[at("A-1-1")]).toBe(FREE);
  });
});

describe("applyEnvelope", () => {
  const base = stateFromSnapshot(venue, snapshot(10));

  it("applies the next seq and advances the seat seq", () => {
    const held = applyEnvelope(base, venue, envelope("seat.held", 11, ["A-1-1", "A-1-2"], { hold_token: "x" }), null);
    expect(held.outcome).toBe("applied");
    expect(held.state.seq).toBe(11);
    expect(held.state.codes[at("A-1-1")]).toBe(HELD);
    expect(held.state.codes[at("A-1-2")]).toBe(HELD);
    expect(base.codes[at("A-1-1")]).toBe(FREE); // the input is untouched

    const reserved = applyEnvelope(held.state, venue, envelope("seat.reserved", 12, ["A-1-1"]), null);
    expect(reserved.state.codes[at("A-1-1")]).toBe(RESERVED);
    const released = applyEnvelope(reserved.state, venue, envelope("seat.released", 13, ["A-1-2"], { reason: "expired" }), null);
    expect(released.state.codes[at("A-1-2")]).toBe(FREE);
    const blocked = applyEnvelope(released.state, venue, envelope("seat.blocked", 14, ["B-1-1"]), null);
    expect(blocked.state.codes[at("B-1-1")]).toBe(BLOCKED);
    expect(blocked.state.seq).toBe(14);
  });

  it("marks a seat.held with the buyer's own token as mine", () => {
    const mine = applyEnvelope(base, venue, envelope("seat.held", 11, ["A-1-1"], { hold_token: "mine" }), "mine");
    expect(mine.state.codes[at("A-1-1")]).toBe(MINE);
    const theirs = applyEnvelope(base, venue, envelope("seat.held", 11, ["A-1-1"], { hold_token: "other" }), "mine");
    expect(theirs.state.codes[at("A-1-1")]).toBe(HELD);
  });

  it("drops duplicates and older seqs", () => {
    const once = applyEnvelope(base, venue, envelope("seat.held", 11, ["A-1-1"]), null).state;
    const again = applyEnvelope(once, venue, envelope("seat.released", 11, ["A-1-1"]), null);
    expect(again.outcome).toBe("stale");
    expect(again.state).toBe(once);
    expect(again.state.codes[at("A-1-1")]).toBe(HELD);
    expect(applyEnvelope(once, venue, envelope("seat.released", 5, ["A-1-1"]), null).outcome).toBe("stale");
  });

  it("detects a gap, applies nothing, and then ignores seat events until a snapshot", () => {
    const gap = applyEnvelope(base, venue, envelope("seat.held", 12, ["A-1-1"]), null);
    expect(gap.outcome).toBe("gap");
    expect(gap.state.awaitingSnapshot).toBe(true);
    expect(gap.state.seq).toBe(10);
    expect(gap.state.codes[at("A-1-1")]).toBe(FREE);
    // Even the event that would have been next is ignored now: the map is not trusted.
    const next = applyEnvelope(gap.state, venue, envelope("seat.held", 11, ["A-1-3"]), null);
    expect(next.outcome).toBe("ignored");
    expect(next.state.codes[at("A-1-3")]).toBe(FREE);
  });

  it("ignores seats the layout does not know", () => {
    const result = applyEnvelope(base, venue, envelope("seat.held", 11, ["Z-9-9", "A-1-1"]), null);
    expect(result.outcome).toBe("applied");
    expect(result.state.codes[at("A-1-1")]).toBe(HELD);
  });
});

describe("applyStats", () => {
  const base = stateFromSnapshot(venue, snapshot(10, {}, 40));

  it("applies newer stats, even with skipped seqs, and drops older or equal ones", () => {
    const newer = applyStats(base, stats(45, 12));
    expect(newer.outcome).toBe("applied");
    expect(newer.state.statsSeq).toBe(45);
    expect(newer.state.stats.free).toBe(12);
    expect(applyStats(newer.state, stats(45, 3)).outcome).toBe("stale");
    const older = applyStats(newer.state, stats(41, 3));
    expect(older.outcome).toBe("stale");
    expect(older.state.stats.free).toBe(12);
  });

  it("reads the body under data or at the top level", () => {
    expect(statsBody({ data: stats(5) }).seq).toBe(5);
    expect(statsBody({ ...stats(6) }).seq).toBe(6);
  });
});

describe("applyBatch", () => {
  it("applies a frame's messages in order and reports the applied envelopes", () => {
    const result = applyBatch(
      null,
      venue,
      [
        envelope("seat.held", 3, ["A-1-1"]), // before any snapshot: nothing to apply to
        snapshot(10),
        envelope("seat.held", 10, ["A-1-1"]), // already in the snapshot
        envelope("seat.held", 11, ["A-1-2"]),
        { type: "stats.updated", event_id: 7, seq: 20, data: stats(20, 17) },
        { type: "pong" },
      ],
      null,
    );
    expect(result.snapshot).toBe(true);
    expect(result.gap).toBe(false);
    expect(result.applied.map((e) => e.seq)).toEqual([11]);
    expect(result.state!.seq).toBe(11);
    expect(result.state!.codes[at("A-1-1")]).toBe(FREE);
    expect(result.state!.codes[at("A-1-2")]).toBe(HELD);
    expect(result.state!.stats.free).toBe(17);
  });

  it("a new snapshot replaces the whole map and ends the wait after a gap", () => {
    const first = applyBatch(null, venue, [snapshot(10, { "A-1-1": "r" })], null).state!;
    const gapped = applyBatch(first, venue, [envelope("seat.held", 15, ["A-1-2"])], null);
    expect(gapped.gap).toBe(true);
    const replaced = applyBatch(
      gapped.state,
      venue,
      [envelope("seat.held", 16, ["A-1-3"]), snapshot(20, { "B-1-1": "h" }), envelope("seat.released", 21, ["B-1-1"])],
      null,
    );
    const state = replaced.state!;
    expect(state.awaitingSnapshot).toBe(false);
    expect(state.seq).toBe(21);
    expect(state.codes[at("A-1-1")]).toBe(FREE); // the old map's reservation is gone
    expect(state.codes[at("A-1-3")]).toBe(FREE); // ignored while waiting
    expect(state.codes[at("B-1-1")]).toBe(FREE);
    expect(first.codes[at("A-1-1")]).toBe(RESERVED); // inputs untouched
  });

  it("returns the same state object when nothing changed", () => {
    const state = applyBatch(null, venue, [snapshot(10)], null).state!;
    expect(applyBatch(state, venue, [envelope("seat.held", 9, ["A-1-1"])], null).state).toBe(state);
  });
});

describe("mine", () => {
  const hold: MyHold = { token: "t", seats: ["A-1-1", "A-1-2"], expiresAt: "2999-01-01T00:00:00Z", seq: 11 };
  const holdSeats = { seats: new Set([at("A-1-1"), at("A-1-2")]), seq: 11 };

  it("isMine: server m, or in my hold and held, or in my hold before its seat.held came", () => {
    expect(isMine(MINE, false, 0, 10)).toBe(true);
    expect(isMine(HELD, true, 11, 11)).toBe(true);
    expect(isMine(HELD, false, 11, 11)).toBe(false);
    expect(isMine(FREE, true, 11, 10)).toBe(true);
    expect(isMine(FREE, true, 11, 12)).toBe(false); // released since
    expect(isMine(RESERVED, true, 11, 12)).toBe(false);
  });

  it("ends the same whether seat.held or the POST response comes first", () => {
    const start = applyBatch(null, venue, [snapshot(10)], null).state!;
    const held = envelope("seat.held", 11, ["A-1-1", "A-1-2"], { hold_token: "t" });

    // WebSocket first: the token is not known yet, so the seats are plain "held"...
    const wsFirst = applyBatch(start, venue, [held], null).state!;
    expect(seatView(wsFirst, at("A-1-1"), null, false)).toBe("held");
    // ...until the POST answers with the hold.
    expect(seatView(wsFirst, at("A-1-1"), holdSeats, false)).toBe("mine");

    // POST first: mine straight away, and still mine once seat.held lands.
    expect(seatView(start, at("A-1-2"), holdSeats, false)).toBe("mine");
    const postFirst = applyBatch(start, venue, [held], hold.token).state!;
    expect(postFirst.codes[at("A-1-2")]).toBe(MINE);
    expect(seatView(postFirst, at("A-1-2"), holdSeats, false)).toBe("mine");

    // Either way a seat outside the hold is unaffected.
    expect(seatView(postFirst, at("A-1-3"), holdSeats, false)).toBe("free");
  });

  it("seatView: selected only while free; taken seats show their state", () => {
    const state = stateFromSnapshot(venue, snapshot(10, { "A-1-2": "h", "A-1-3": "r", "A-1-4": "b" }));
    expect(seatView(state, at("A-1-1"), null, true)).toBe("selected");
    expect(seatView(state, at("A-1-2"), null, true)).toBe("held");
    expect(seatView(state, at("A-1-3"), null, false)).toBe("reserved");
    expect(seatView(state, at("A-1-4"), null, false)).toBe("blocked");
  });

  it("holdAfterSnapshot keeps only the seats still mine", () => {
    const snap = (states: Record<string, string>, seq = 20) => stateFromSnapshot(venue, snapshot(seq, states));
    expect(holdAfterSnapshot(hold, snap({ "A-1-1": "m", "A-1-2": "m" }), venue, true)).toBe(hold);
    expect(holdAfterSnapshot(hold, snap({ "A-1-1": "m", "A-1-2": "r" }), venue, true)).toEqual({ ...hold, seats: ["A-1-1"] });
    expect(holdAfterSnapshot(hold, snap({ "A-1-1": "h", "A-1-2": "h" }), venue, true)).toBeNull();
    expect(holdAfterSnapshot(hold, snap({}), venue, false)).toBeNull();
    // Not strict (a socket opened before the session existed sees "h" for its own hold).
    expect(holdAfterSnapshot(hold, snap({ "A-1-1": "h", "A-1-2": "h" }), venue, false)).toBe(hold);
    // A shared snapshot names the buyer's seats in `mine`, which is enough when strict.
    const shared = (mine: string[]) =>
      stateFromSnapshot(venue, { ...snapshot(20, { "A-1-1": "h", "A-1-2": "h" }), mine });
    expect(holdAfterSnapshot(hold, shared(["A-1-1", "A-1-2"]), venue, true)).toBe(hold);
    expect(holdAfterSnapshot(hold, shared(["A-1-2"]), venue, true)).toEqual({ ...hold, seats: ["A-1-2"] });
    // A snapshot older than the hold cannot judge it.
    expect(holdAfterSnapshot(hold, snap({}, 5), venue, true)).toBe(hold);
  });
});
