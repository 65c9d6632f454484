import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import type { ConnectionStatus } from "../live/socket";
import { FakeSocket, fakeTimers, resetFakes } from "../testing/fakeSocket";
import { figures, place, status } from "../testing/roomFixtures";
import type { RoomPassResponse, RoomStatus } from "../types";
import { RETRY_MS, WaitingRoomClient, type RoomApi } from "./roomClient";
import type { RoomView } from "./roomState";

type Answer<T> = T | Error;

/** The room's HTTP API, answering from queues the test fills. */
function fakeApi() {
  const joins: Answer<RoomStatus>[] = [];
  const passes: Answer<RoomPassResponse>[] = [];
  const next = async <T,>(answers: Answer<T>[]): Promise<T> => {
    const answer = answers.shift();
    if (answer === undefined) throw new Error("no answer queued");
    if (answer instanceof Error) throw answer;
    return answer;
  };
  const api: RoomApi = { join: vi.fn(() => next(joins)), pass: vi.fn(() => next(passes)) };
  return { api, joins, passes };
}

const PASS = { needed: true, expires_at: "2030-01-01T10:20:00Z" };
const refusal = (status: number, code: string) => new ApiError(status, { code, detail: code });

function room(answers: ReturnType<typeof fakeApi>) {
  const views: RoomView[] = [];
  const statuses: ConnectionStatus[] = [];
  const errors: (string | null)[] = [];
  const onAdmitted = vi.fn();
  const client = new WaitingRoomClient({
    eventId: 7,
    url: "ws://test/ws/events/7/",
    onView: (v) => views.push(v),
    onAdmitted,
    onError: (e) => errors.push(e),
    onStatus: (s) => statuses.push(s),
    api: answers.api,
    socket: { createSocket: (url) => new FakeSocket(url), timers: fakeTimers, random: () => 1 },
  });
  client.start();
  return { client, views, statuses, errors, onAdmitted, last: () => views[views.length - 1] };
}

/** Lets the fake API's promises settle. */
const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(resetFakes);
afterEach(() => vi.useRealTimers());

describe("WaitingRoomClient", () => {
  it("goes straight to the map when the event has no room on", async () => {
    const answers = fakeApi();
    answers.joins.push({ ...status(null), state: "off", place: null });
    const { onAdmitted } = room(answers);
    await settle();
    expect(onAdmitted).toHaveBeenCalledOnce();
    expect(FakeSocket.made).toHaveLength(0);
    expect(answers.api.pass).not.toHaveBeenCalled();
  });

  it("waits on the socket, follows the position, then takes the pass and hands over", async () => {
    const answers = fakeApi();
    answers.joins.push(status(null, { state: "before", drawn: false }));
    answers.passes.push(PASS);
    const { last, onAdmitted, statuses } = room(answers);
    await settle();
    expect(last()).toMatchObject({ phase: "waiting", state: "before", position: null });

    const ws = FakeSocket.latest();
    ws.open();
    ws.receive({ ...figures({ state: "before", drawn: false }), place: place(null) });
    expect(statuses.map((s) => s.kind)).toEqual(["connecting", "live"]);
    ws.receive({ ...figures(), place: place(2) }); // the server's frame after the draw
    expect(last()).toMatchObject({ phase: "waiting", position: 2, ahead: 1, etaSeconds: 10 });
    ws.receive(figures({ serving: 1 }));
    expect(last()).toMatchObject({ phase: "waiting", position: 1, ahead: 0, etaSeconds: 5 });
    expect(answers.api.pass).not.toHaveBeenCalled();

    ws.receive(figures({ serving: 2 }));
    ws.receive(figures({ serving: 2 })); // a frame while the pass is on its way asks again for nothing
    expect(last().phase).toBe("admitted");
    await settle();
    expect(answers.api.pass).toHaveBeenCalledOnce();
    expect(onAdmitted).toHaveBeenCalledOnce();
    expect(ws.readyState).toBe(3); // the map opens its own socket, with the pass
  });

  it("takes the pass at once when the join answers that the turn has come", async () => {
    const answers = fakeApi();
    answers.joins.push(status(3, { serving: 4 }));
    answers.passes.push(PASS);
    const { onAdmitted } = room(answers);
    await settle();
    expect(onAdmitted).toHaveBeenCalledOnce();
    expect(FakeSocket.made).toHaveLength(0);
  });

  it("joins again for a new place when the old one is spent", async () => {
    const answers = fakeApi();
    answers.joins.push(status(3, { serving: 3 }), status(9, { serving: 3 }));
    answers.passes.push(refusal(410, "place_expired"));
    const { last, onAdmitted } = room(answers);
    await settle();
    expect(answers.api.join).toHaveBeenCalledTimes(2);
    expect(last()).toMatchObject({ phase: "waiting", ticket: 9, position: 6 });
    expect(onAdmitted).not.toHaveBeenCalled();
  });

  it("asks the socket for its place when the pass says it is not its turn yet", async () => {
    const answers = fakeApi();
    answers.joins.push(status(2, { serving: 1 }));
    answers.passes.push(refusal(409, "not_your_turn"), PASS);
    const { onAdmitted } = room(answers);
    await settle();
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive(figures({ serving: 2 }));
    await settle();
    expect(ws.sentOfType("resync")).toHaveLength(1);
    ws.receive({ ...figures({ serving: 2 }), place: place(2) });
    await settle();
    expect(onAdmitted).toHaveBeenCalledOnce();
  });

  it("joins again when a frame says the buyer has no place", async () => {
    const answers = fakeApi();
    answers.joins.push(status(4), status(7));
    const { last } = room(answers);
    await settle();
    FakeSocket.latest().open();
    FakeSocket.latest().receive({ ...figures(), place: null });
    await settle();
    expect(answers.api.join).toHaveBeenCalledTimes(2);
    expect(last()).toMatchObject({ phase: "waiting", ticket: 7 });
  });

  it("says what failed and tries again later", async () => {
    const answers = fakeApi();
    answers.joins.push(new TypeError("Failed to fetch"), status(4));
    const { errors, last } = room(answers);
    await settle();
    expect(errors).toEqual(["Network error: Failed to fetch"]);
    await vi.advanceTimersByTimeAsync(RETRY_MS);
    expect(errors).toEqual(["Network error: Failed to fetch", null]);
    expect(last()).toMatchObject({ phase: "waiting", position: 4 });
  });

  it("reconnects a dropped socket and takes the place from its first frame", async () => {
    const answers = fakeApi();
    answers.joins.push(status(5));
    const { last, statuses } = room(answers);
    await settle();
    FakeSocket.latest().open();
    FakeSocket.latest().receive({ ...figures(), place: place(5) });
    FakeSocket.latest().serverClose(1006);
    expect(statuses[statuses.length - 1].kind).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(500);
    expect(FakeSocket.made).toHaveLength(2);
    FakeSocket.latest().open();
    FakeSocket.latest().receive({ ...figures({ serving: 3 }), place: place(5) });
    expect(statuses[statuses.length - 1].kind).toBe("live");
    expect(last()).toMatchObject({ position: 2 });
  });

  it("does nothing more once stopped", async () => {
    const answers = fakeApi();
    answers.joins.push(status(1, { serving: 1 }));
    const { client, onAdmitted } = room(answers);
    client.stop();
    await settle();
    expect(onAdmitted).not.toHaveBeenCalled();
    expect(answers.api.pass).not.toHaveBeenCalled();
  });
});
