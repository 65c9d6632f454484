import type { ServerMessage, SocketFrame } from "../types";

// The event's WebSocket: connects, keeps the connection alive, reconnects with backoff, and
// asks for a resync at most once per gap. It knows nothing about seats; the page applies
// the messages (protocol/seatState.ts).

export type ConnectionStatus =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "reconnecting" }
  | { kind: "closed"; reason: string };

/** The part of the browser's WebSocket this client uses; tests pass a fake. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(id: unknown): void;
  now(): number;
}

export interface LiveSocketOptions {
  url: string;
  onMessage: (message: ServerMessage) => void;
  onStatus: (status: ConnectionStatus) => void;
  createSocket?: (url: string) => SocketLike;
  timers?: Timers;
  random?: () => number;
}

const OPEN = 1;
export const PING_INTERVAL_MS = 25_000;
export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 10_000;
// The server closes a socket at 20 client messages per 10 s; resyncs stay far below that.
export const RESYNC_MIN_INTERVAL_MS = 1_000;

/** Close codes after which reconnecting cannot help. */
export const FINAL_CLOSES: Record<number, string> = {
  4404: "Event not found",
  4409: "Sale not open",
};

const browserTimers: Timers = {
  setTimeout: (callback, ms) => window.setTimeout(callback, ms),
  clearTimeout: (id) => window.clearTimeout(id as number),
  setInterval: (callback, ms) => window.setInterval(callback, ms),
  clearInterval: (id) => window.clearInterval(id as number),
  now: () => Date.now(),
};

/** 0.5 s doubling to 10 s; the jitter (half to all of it) spreads a crowd's reconnects. */
export function backoffDelay(attempt: number, random: () => number): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  return ceiling / 2 + (random() * ceiling) / 2;
}

export function socketUrl(location: { protocol: string; host: string }, eventId: number): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/events/${eventId}/`;
}

export class LiveSocket {
  private readonly options: LiveSocketOptions;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly createSocket: (url: string) => SocketLike;
  private socket: SocketLike | null = null;
  private attempt = 0;
  private stopped = false;
  private live = false;
  private awaitingSnapshot = false;
  private lastResyncAt = -Infinity;
  private pingTimer: unknown = null;
  private retryTimer: unknown = null;
  private resyncTimer: unknown = null;

  constructor(options: LiveSocketOptions) {
    this.options = options;
    this.timers = options.timers ?? browserTimers;
    this.random = options.random ?? Math.random;
    this.createSocket = options.createSocket ?? ((url) => new WebSocket(url) as unknown as SocketLike);
  }

  start(): void {
    this.options.onStatus({ kind: "connecting" });
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000);
  }

  /**
   * Asks for a fresh snapshot after a seq gap (in a waiting room: the buyer's own room
   * frame): once until that snapshot arrives.
   */
  resync(): void {
    if (this.awaitingSnapshot || !this.socket || this.socket.readyState !== OPEN) return;
    this.awaitingSnapshot = true;
    const wait = this.lastResyncAt + RESYNC_MIN_INTERVAL_MS - this.timers.now();
    if (wait <= 0) {
      this.sendResync();
    } else {
      this.resyncTimer = this.timers.setTimeout(() => {
        this.resyncTimer = null;
        this.sendResync();
      }, wait);
    }
  }

  private sendResync(): void {
    if (this.socket?.readyState !== OPEN) return;
    this.lastResyncAt = this.timers.now();
    this.socket.send(JSON.stringify({ type: "resync" }));
  }

  private connect(): void {
    const socket = this.createSocket(this.options.url);
    this.socket = socket;
    this.live = false;
    this.awaitingSnapshot = false;
    // Handlers check `this.socket === socket`: a replaced socket's late events are moot.
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.pingTimer = this.timers.setInterval(() => {
        if (socket.readyState === OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, PING_INTERVAL_MS);
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket || typeof event.data !== "string") return;
      let message: SocketFrame;
      try {
        message = JSON.parse(event.data) as SocketFrame;
      } catch {
        return;
      }
      if (message.type === "changes") {
        // Only packaging: the items go on one by one, so the seq rules see them unchanged.
        for (const item of message.items) this.options.onMessage(item);
        return;
      }
      // A waiting room's socket gets `room` frames instead of snapshots (its own one first,
      // and one for each resync): they count the same way here.
      const first = message.type === "snapshot" || message.type === "room";
      if (first) {
        this.awaitingSnapshot = false;
        this.attempt = 0;
      }
      this.options.onMessage(message);
      if (first && !this.live) {
        this.live = true;
        this.options.onStatus({ kind: "live" });
      }
    };
    socket.onerror = () => {
      // Browsers follow an error with a close; make sure of it, the close reconnects.
      if (this.socket === socket) socket.close();
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.clearTimers();
      if (this.stopped) return;
      const final = FINAL_CLOSES[event.code];
      if (final) {
        this.options.onStatus({ kind: "closed", reason: final });
        return;
      }
      this.options.onStatus({ kind: "reconnecting" });
      const wait = backoffDelay(this.attempt, this.random);
      this.attempt++;
      this.retryTimer = this.timers.setTimeout(() => {
        this.retryTimer = null;
        if (!this.stopped) this.connect();
      }, wait);
    };
  }

  private clearTimers(): void {
    if (this.pingTimer !== null) this.timers.clearInterval(this.pingTimer);
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    if (this.resyncTimer !== null) this.timers.clearTimeout(this.resyncTimer);
    this.pingTimer = this.retryTimer = this.resyncTimer = null;
  }
}
