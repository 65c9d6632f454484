import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { serverClockNote, serverNow } from "../api";
import { countdownText } from "../format";
import { applyBatch, type SeatState } from "../protocol/seatState";
import { fakeFetch } from "../testing/fakeFetch";
import { envelope, snapshot, testVenue } from "../testing/fixtures";
import { memoryStorage } from "../testing/memoryStorage";
import type { HoldResponse, ServerMessage } from "../types";
import { HoldClient, NO_NOTICES, holdRemainingMs, type HoldView } from "./holdClient";
import { holdKey, holdSave } from "./holdStore";

const NOW = Date.parse("2030-05-01T12:00:00Z");
const MINUTE = 60_000;
const at = (ms: number) => new Date(ms).toISOString();

/** The POST's answer: A-1-1 and A-1-2 held for five minutes, their seat.held at seq 11. */
const HELD: HoldResponse = {
  hold_token: "tok-1",
  event_id: 7,
  seats: ["A-1-1", "A-1-2"],
  expires_at: at(NOW + 5 * MINUTE),
  seq: 11,
};
const MY_HOLD = { token: "tok-1", seats: ["A-1-1", "A-1-2"], expiresAt: at(NOW + 5 * MINUTE), seq: 11 };
const venue = testVenue();

function setup({ onNotAdmitted, stored }: { onNotAdmitted?: () => void; stored?: typeof MY_HOLD } = {}) {
  const server = fakeFetch();
  const storage = memoryStorage();
  if (stored) holdSave(storage, 7, stored);
  const client = new HoldClient({ eventId: 7, storage, onNotAdmitted });
  const views: HoldView[] = [];
  client.subscribe(() => views.push(client.view()));
  client.start();

  // The live feed as the page runs it: each call is one frame's messages.
  let state: SeatState | null = null;
  const feed = (...messages: ServerMessage[]) => {
    const result = applyBatch(state, venue, messages, client.myToken());
    state = result.state;
    client.feedUpdate({ state, status: { kind: "live" }, applied: result.applied, snapshot: result.snapshot }, venue);
  };
  const storedHold = () => {
    const raw = storage.data.get(holdKey(7));
    return raw === undefined ? null : (JSON.parse(raw) as { hold_token: string; seats: string[]; expires_at: string });
  };
  return { server, storage, client, views, feed, stored: storedHold, view: () => client.view() };
}

/** A buyer who holds A-1-1 and A-1-2. */
async function holding(options: Parameters<typeof setup>[0] = {}) {
  const t = setup(options);
  t.server.reply(201, HELD);
  expect(await t.client.create({ seats: HELD.seats })).toEqual([]);
  t.server.requests.length = 0;
  t.views.length = 0;
  return t;
}

const refusal = (code: string, detail = code, extra = {}) => ({ code, detail, ...extra });

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW);
});

afterEach(() => {
  serverClockNote(new Date(Date.now()).toUTCString(), Date.now()); // the clocks agree again
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe("HoldClient: commands", () => {
  it("holds the seats: the POST, the hold, and the hold kept in storage for a reload", async () => {
    const { server, client, views, view, stored } = setup();
    expect(view()).toEqual({ hold: null, busy: null, notices: NO_NOTICES });
    server.reply(201, HELD);
    const lost = await client.create({ seats: ["A-1-1", "A-1-2"] });

    expect(lost).toEqual([]);
    expect(server.requests).toEqual([
      expect.objectContaining({ path: "/api/events/7/holds", body: { seats: ["A-1-1", "A-1-2"] } }),
    ]);
    expect(server.requests[0].headers["X-CSRFToken"]).toBe("tok");
    expect(view()).toEqual({ hold: MY_HOLD, busy: null, notices: NO_NOTICES });
    expect(views.map((v) => v.busy)).toEqual(["hold", "hold", null]);
    expect(client.myToken()).toBe("tok-1");
    expect(stored()).toMatchObject({ hold_token: "tok-1", seats: ["A-1-1", "A-1-2"], expires_at: HELD.expires_at });
  });

  it("asks for the best seats with the same command", async () => {
    const { server, client } = setup();
    server.reply(201, HELD);
    await client.create({ best: { count: 2, section: 11 } });
    expect(server.requests[0].body).toEqual({ best: { count: 2, section: 11 } });
  });

  it("a conflict names exactly the seats lost, and holds nothing", async () => {
    const { server, client, view, stored } = setup();
    server.reply(409, refusal("seats_unavailable", "Some seats are taken.", { seats: ["A-1-2"] }));
    const lost = await client.create({ seats: ["A-1-2", "A-1-3"] });

    expect(lost).toEqual(["A-1-2"]);
    expect(view()).toEqual({ hold: null, busy: null, notices: { ...NO_NOTICES, conflict: ["A-1-2"] } });
    expect(stored()).toBeNull();
  });

  it("a new command clears the last one's notices", async () => {
    const { server, client, view } = setup();
    server.reply(409, refusal("seats_unavailable", "Taken.", { seats: ["A-1-2"] }));
    await client.create({ seats: ["A-1-2"] });
    server.reply(201, HELD);
    const pending = client.create({ seats: HELD.seats });
    expect(view().notices).toEqual(NO_NOTICES);
    await pending;
  });

  it("releases the hold", async () => {
    const { server, client, views, view, stored } = await holding();
    server.reply(200, { seats: HELD.seats });
    await client.release();

    expect(server.requests.map((r) => [r.path, r.body])).toEqual([["/api/holds/tok-1/release", {}]]);
    expect(view()).toEqual({ hold: null, busy: null, notices: NO_NOTICES });
    expect(views[0].busy).toBe("release");
    expect(stored()).toBeNull();
  });

  it("reserves the hold: the reservation is shown and the hold is gone", async () => {
    const { server, client, view, stored } = await holding();
    server.reply(201, { reservation_id: "res-9", event_id: 7, seats: HELD.seats, seq: 12 });
    await client.confirm();

    expect(server.requests.map((r) => r.path)).toEqual(["/api/holds/tok-1/reserve"]);
    expect(view()).toEqual({
      hold: null,
      busy: null,
      notices: { ...NO_NOTICES, reservation: { id: "res-9", seats: ["A-1-1", "A-1-2"] } },
    });
    expect(stored()).toBeNull();
  });

  it("extends the hold: a new expiry, stored, and the timer follows it", async () => {
    const { server, client, view, stored } = await holding();
    server.reply(200, { expires_at: at(NOW + 10 * MINUTE) });
    await client.extend();

    expect(server.requests.map((r) => r.path)).toEqual(["/api/holds/tok-1/extend"]);
    expect(view().hold).toEqual({ ...MY_HOLD, expiresAt: at(NOW + 10 * MINUTE) });
    expect(stored()?.expires_at).toBe(at(NOW + 10 * MINUTE));
    await vi.advanceTimersByTimeAsync(6 * MINUTE);
    expect(view().hold).not.toBeNull();
    await vi.advanceTimersByTimeAsync(4 * MINUTE);
    expect(view().hold).toBeNull();
    expect(view().notices.expired).toBe(true);
  });

  it("an extension answered after the hold is gone brings nothing back", async () => {
    const { server, client, view, feed } = await holding();
    feed({ ...snapshot(11, { "A-1-1": "h", "A-1-2": "h" }), mine: HELD.seats });
    server.reply(200, { expires_at: at(NOW + 10 * MINUTE) });
    const pending = client.extend();
    feed(envelope("seat.released", 12, HELD.seats, { hold_token: "tok-1", reason: "released" }));
    await pending;
    expect(view().hold).toBeNull();
  });

  it("without a hold, extend, release and confirm send nothing", async () => {
    const { server, client, views } = setup();
    await client.extend();
    await client.release();
    await client.confirm();
    expect(server.fetch).not.toHaveBeenCalled();
    expect(views).toEqual([]);
  });
});

describe("HoldClient: expiry", () => {
  it("counts down on the server's clock and ends the hold when the server does", async () => {
    const { server, client, view, stored } = setup();
    // The buyer's clock is 10 minutes slow: the answer's Date header says so.
    const serverTime = NOW + 10 * MINUTE;
    server.answers.push({
      status: 201,
      body: { ...HELD, expires_at: at(serverTime + 5 * MINUTE) },
      date: new Date(serverTime).toUTCString(),
    });
    await client.create({ seats: HELD.seats });
    const hold = view().hold!;
    expect(countdownText(holdRemainingMs(hold, serverNow()))).toBe("05:00");

    await vi.advanceTimersByTimeAsync(5 * MINUTE - 1_000);
    expect(countdownText(holdRemainingMs(hold, serverNow()))).toBe("00:01");
    expect(view().hold).not.toBeNull();

    await vi.advanceTimersByTimeAsync(1_000);
    expect(countdownText(holdRemainingMs(hold, serverNow()))).toBe("00:00");
    expect(view()).toEqual({ hold: null, busy: null, notices: { ...NO_NOTICES, expired: true } });
    expect(stored()).toBeNull();
  });

  it("a hold restored after a reload keeps its expiry; the timer runs only while started", async () => {
    const { client, view } = setup({ stored: { ...MY_HOLD, expiresAt: at(NOW + MINUTE) } });
    expect(view().hold?.token).toBe("tok-1");
    client.stop(); // the page is gone: nothing more happens
    await vi.advanceTimersByTimeAsync(2 * MINUTE);
    expect(view().hold).not.toBeNull();
    client.start(); // long past its end: it expires at once
    await vi.advanceTimersByTimeAsync(0);
    expect(view().notices.expired).toBe(true);
  });

  it("a stored hold already over is not restored", () => {
    const { view, stored } = setup({ stored: { ...MY_HOLD, expiresAt: at(NOW - 1_000) } });
    expect(view().hold).toBeNull();
    expect(stored()).toBeNull();
  });

  it("a command answered hold_expired ends the hold as expired", async () => {
    const { server, client, view } = await holding();
    server.reply(410, refusal("hold_expired", "This hold has expired."));
    await client.extend();
    expect(view()).toEqual({ hold: null, busy: null, notices: { ...NO_NOTICES, expired: true } });
  });
});

describe("HoldClient: refusals and errors", () => {
  it("403 not_admitted sends the buyer back to the waiting room, no error shown", async () => {
    const onNotAdmitted = vi.fn();
    const { server, client, view } = await holding({ onNotAdmitted });
    server.reply(403, refusal("not_admitted", "Wait for your turn."));
    await client.confirm();
    expect(onNotAdmitted).toHaveBeenCalledOnce();
    expect(view()).toEqual({ hold: MY_HOLD, busy: null, notices: NO_NOTICES });

    server.reply(403, refusal("not_admitted", "Wait for your turn."));
    expect(await client.create({ seats: ["A-1-3"] })).toBeNull();
    expect(onNotAdmitted).toHaveBeenCalledTimes(2);
  });

  it("403 not_admitted without a callback is shown as an error", async () => {
    const { server, client, view } = await holding();
    server.reply(403, refusal("not_admitted", "Wait for your turn."));
    await client.release();
    expect(view()).toEqual({ hold: MY_HOLD, busy: null, notices: { ...NO_NOTICES, error: "Wait for your turn." } });
  });

  it("the callback can be set later (the hook keeps it current)", async () => {
    const { server, client } = await holding();
    const onNotAdmitted = vi.fn();
    client.onNotAdmitted = onNotAdmitted;
    server.reply(403, refusal("not_admitted"));
    await client.extend();
    expect(onNotAdmitted).toHaveBeenCalledOnce();
  });

  it("another refusal shows the server's detail and changes nothing else", async () => {
    const { server, client, view } = setup();
    server.reply(400, refusal("too_many_seats", "You can hold at most 6 seats."));
    expect(await client.create({ seats: ["A-1-1"] })).toBeNull();
    expect(view()).toEqual({ hold: null, busy: null, notices: { ...NO_NOTICES, error: "You can hold at most 6 seats." } });
  });

  it("a network failure, after the retries, is shown and keeps the hold", async () => {
    const { server, client, view } = await holding();
    server.answers.push(new TypeError("Failed to fetch"), new TypeError("Failed to fetch"), new TypeError("Failed to fetch"));
    const pending = client.release();
    expect(view().busy).toBe("release");
    await vi.advanceTimersByTimeAsync(2_000);
    await pending;
    expect(server.fetch).toHaveBeenCalledTimes(4); // the hold, then the release thrice
    expect(view()).toEqual({
      hold: MY_HOLD,
      busy: null,
      notices: { ...NO_NOTICES, error: "Network error: Failed to fetch" },
    });
  });

  it("dismiss clears the notices", async () => {
    const { server, client, view } = setup();
    server.reply(400, refusal("bad", "Bad."));
    await client.create({ seats: [] });
    client.dismiss();
    expect(view().notices).toEqual(NO_NOTICES);
  });
});

describe("HoldClient: what the live feed says", () => {
  it("a snapshot keeps the hold's seats it shows held", async () => {
    const { feed, view } = await holding();
    feed(snapshot(11, { "A-1-1": "h" })); // A-1-2 is free again
    expect(view().hold).toEqual({ ...MY_HOLD, seats: ["A-1-1"] });
  });

  it("a snapshot older than the hold's seat.held changes nothing", async () => {
    const { feed, view } = await holding();
    feed(snapshot(10));
    expect(view().hold).toEqual(MY_HOLD);
  });

  it("a hold restored after a reload keeps only the seats the first snapshot lists as mine", () => {
    const { feed, view, stored } = setup({ stored: MY_HOLD });
    feed({ ...snapshot(20, { "A-1-1": "h", "A-1-2": "h" }), mine: ["A-1-1"] });
    expect(view().hold).toEqual({ ...MY_HOLD, seats: ["A-1-1"] });
    expect(stored()?.seats).toEqual(["A-1-1"]);
    feed(snapshot(21, { "A-1-1": "h" })); // later snapshots: held is enough
    expect(view().hold?.seats).toEqual(["A-1-1"]);
  });

  it("a restored hold no snapshot shows as mine is dropped", () => {
    const { feed, view, stored } = setup({ stored: MY_HOLD });
    feed(snapshot(20, { "A-1-1": "h", "A-1-2": "h" }));
    expect(view()).toEqual({ hold: null, busy: null, notices: NO_NOTICES });
    expect(stored()).toBeNull();
  });

  it("seats released from another tab leave the hold; all of them end it", async () => {
    const { feed, view } = await holding();
    feed({ ...snapshot(11, { "A-1-1": "h", "A-1-2": "h" }), mine: HELD.seats });
    feed(envelope("seat.released", 12, ["A-1-1"], { hold_token: "tok-1", reason: "released" }));
    expect(view().hold?.seats).toEqual(["A-1-2"]);
    feed(envelope("seat.released", 13, ["A-1-2"], { hold_token: "tok-1", reason: "released" }));
    expect(view()).toEqual({ hold: null, busy: null, notices: NO_NOTICES });
  });

  it("the server expiring the hold ends it with the expired notice", async () => {
    const { feed, view } = await holding();
    feed(snapshot(11, { "A-1-1": "h", "A-1-2": "h" }));
    feed(envelope("seat.released", 12, HELD.seats, { hold_token: "tok-1", reason: "expired" }));
    expect(view()).toEqual({ hold: null, busy: null, notices: { ...NO_NOTICES, expired: true } });
  });

  it("a reservation from another tab ends the hold; this tab's own does not before its answer", async () => {
    const first = await holding();
    first.feed(snapshot(11, { "A-1-1": "h", "A-1-2": "h" }));
    first.feed(envelope("seat.reserved", 12, HELD.seats, { hold_token: "tok-1" }));
    expect(first.view().hold).toBeNull();
    vi.unstubAllGlobals();

    const { server, client, feed, view } = await holding();
    feed(snapshot(11, { "A-1-1": "h", "A-1-2": "h" }));
    server.reply(201, { reservation_id: "res-9", event_id: 7, seats: HELD.seats, seq: 12 });
    const pending = client.confirm();
    feed(envelope("seat.reserved", 12, HELD.seats, { hold_token: "tok-1" }));
    expect(view().hold).toEqual(MY_HOLD);
    await pending;
    expect(view().notices.reservation?.id).toBe("res-9");
  });

  it("other buyers' seat events do not touch the hold", async () => {
    const { feed, view } = await holding();
    feed(snapshot(11, { "A-1-1": "h", "A-1-2": "h" }));
    feed(
      envelope("seat.held", 12, ["A-1-3"], { hold_token: "other" }),
      envelope("seat.released", 13, ["A-1-3"], { hold_token: "other", reason: "expired" }),
    );
    expect(view().hold).toEqual(MY_HOLD);
  });
});
