import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeSocket, fakeTimers, resetFakes } from "../testing/fakeSocket";
import { envelope, snapshot, stats } from "../testing/fixtures";
import { LiveSocket, backoffDelay, socketUrl, type ConnectionStatus } from "./socket";

function client(random = () => 1) {
  const statuses: ConnectionStatus[] = [];
  const messages: unknown[] = [];
  const socket = new LiveSocket({
    url: "ws://test/ws/events/7/",
    onMessage: (m) => messages.push(m),
    onStatus: (s) => statuses.push(s),
    createSocket: (url) => new FakeSocket(url),
    timers: fakeTimers,
    random,
  });
  socket.start();
  return { socket, statuses, messages, kinds: () => statuses.map((s) => s.kind) };
}

beforeEach(resetFakes);
afterEach(() => vi.useRealTimers());

describe("socketUrl", () => {
  it("follows the page's scheme and host", () => {
    expect(socketUrl({ protocol: "http:", host: "localhost:5173" }, 3)).toBe("ws://localhost:5173/ws/events/3/");
    expect(socketUrl({ protocol: "https:", host: "seats.example" }, 3)).toBe("wss://seats.example/ws/events/3/");
  });
});

describe("backoffDelay", () => {
  it("doubles from 0.5 s to at most 10 s, jittered between half and all of it", () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, () => 1))).toEqual([
      500, 1000, 2000, 4000, 8000, 10000, 10000,
    ]);
    expect(backoffDelay(0, () => 0)).toBe(250);
    expect(backoffDelay(10, () => 0)).toBe(5000);
  });
});

describe("LiveSocket", () => {
  it("is connecting, then live once a snapshot arrives", () => {
    const { kinds, messages } = client();
    expect(kinds()).toEqual(["connecting"]);
    FakeSocket.latest().open();
    expect(kinds()).toEqual(["connecting"]);
    FakeSocket.latest().receive(snapshot(1));
    expect(kinds()).toEqual(["connecting", "live"]);
    expect(messages).toHaveLength(1);
  });

  it("passes a changes frame on as its items, one by one and in order", () => {
    const { kinds, messages } = client();
    const ws = FakeSocket.latest();
    ws.open();
    const items = [
      envelope("seat.held", 11, ["A-1-1"]),
      { type: "stats.updated", event_id: 7, seq: 11, data: stats(11, 17) },
      envelope("seat.released", 12, ["A-1-1"]),
    ];
    ws.receive({ type: "changes", event_id: 7, items });
    expect(messages).toEqual(items);
    expect(kinds()).toEqual(["connecting"]); // only a snapshot makes the map live
  });

  it("pings every 25 s while open", () => {
    client();
    const ws = FakeSocket.latest();
    ws.open();
    vi.advanceTimersByTime(24_999);
    expect(ws.sentOfType("ping")).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(ws.sentOfType("ping")).toHaveLength(1);
    vi.advanceTimersByTime(50_000);
    expect(ws.sentOfType("ping")).toHaveLength(3);
  });

  it("reconnects with growing delays, and resets them after a snapshot", () => {
    const { kinds } = client();
    FakeSocket.latest().serverClose(1006);
    expect(kinds().at(-1)).toBe("reconnecting");
    expect(FakeSocket.made).toHaveLength(1);
    vi.advanceTimersByTime(499);
    expect(FakeSocket.made).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.made).toHaveLength(2);

    FakeSocket.latest().serverClose(1006); // second failure: 1 s
    vi.advanceTimersByTime(999);
    expect(FakeSocket.made).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.made).toHaveLength(3);

    FakeSocket.latest().onerror?.({}); // an error closes and retries too: 2 s
    expect(kinds().at(-1)).toBe("reconnecting");
    vi.advanceTimersByTime(1999);
    expect(FakeSocket.made).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.made).toHaveLength(4);

    const ws = FakeSocket.latest();
    ws.open();
    ws.receive(snapshot(5));
    expect(kinds().at(-1)).toBe("live");
    ws.serverClose(4429); // flood close: still worth a retry, from 0.5 s again
    vi.advanceTimersByTime(500);
    expect(FakeSocket.made).toHaveLength(5);
  });

  it("never waits more than 10 s between attempts", () => {
    client();
    for (let i = 0; i < 8; i++) {
      FakeSocket.latest().serverClose(1006);
      vi.advanceTimersByTime(10_000);
    }
    expect(FakeSocket.made).toHaveLength(9);
  });

  it.each([
    [4404, "Event not found"],
    [4409, "Sale not open"],
  ])("does not reconnect after close %i", (code, reason) => {
    const { statuses } = client();
    FakeSocket.latest().open();
    FakeSocket.latest().serverClose(code);
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.made).toHaveLength(1);
    expect(statuses.at(-1)).toEqual({ kind: "closed", reason });
  });

  it("sends one resync per gap until the snapshot comes, and spaces them a second apart", () => {
    const { socket } = client();
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive(snapshot(1));
    socket.resync();
    socket.resync();
    socket.resync();
    expect(ws.sentOfType("resync")).toHaveLength(1);
    ws.receive(snapshot(9));
    socket.resync(); // a new gap right after: waits out the second
    expect(ws.sentOfType("resync")).toHaveLength(1);
    vi.advanceTimersByTime(1000);
    expect(ws.sentOfType("resync")).toHaveLength(2);
  });

  it("stop closes the socket and cancels any retry", () => {
    const { socket } = client();
    FakeSocket.latest().serverClose(1006);
    socket.stop();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.made).toHaveLength(1);
  });
});
