import { applyBatch, type SeatState } from "../protocol/seatState";
import type { Venue } from "../map/venue";
import type { SeatEnvelope, ServerMessage } from "../types";
import { LiveSocket, type ConnectionStatus, type LiveSocketOptions } from "./socket";

// Socket messages are queued and applied once per animation frame: a burst of hundreds of
// envelopes costs one copy of the seat array, one React update and one redraw.

export interface FeedUpdate {
  state: SeatState | null;
  status: ConnectionStatus;
  /** Seat envelopes applied in this frame (after the snapshot, if there was one). */
  applied: SeatEnvelope[];
  snapshot: boolean;
}

export type Scheduler = (callback: () => void) => () => void;

export interface LiveFeedOptions {
  venue: Venue;
  url: string;
  /** The buyer's hold token, read at apply time: a seat.held with it is "mine". */
  myToken: () => string | null;
  onUpdate: (update: FeedUpdate) => void;
  /** The server sent a waiting room's frame, not the map: the buyer's pass is no more. */
  onRoom?: () => void;
  schedule?: Scheduler;
  socket?: Pick<LiveSocketOptions, "createSocket" | "timers" | "random">;
}

/** Next animation frame; a hidden tab gets no frames, so it falls back to a timer. */
export const frameScheduler: Scheduler = (callback) => {
  if (document.visibilityState === "hidden") {
    const id = window.setTimeout(callback, 250);
    return () => window.clearTimeout(id);
  }
  const id = window.requestAnimationFrame(callback);
  return () => window.cancelAnimationFrame(id);
};

export class LiveFeed {
  private readonly options: LiveFeedOptions;
  private readonly socket: LiveSocket;
  private readonly schedule: Scheduler;
  private state: SeatState | null = null;
  private status: ConnectionStatus = { kind: "connecting" };
  private queue: ServerMessage[] = [];
  private cancelFlush: (() => void) | null = null;

  constructor(options: LiveFeedOptions) {
    this.options = options;
    this.schedule = options.schedule ?? frameScheduler;
    this.socket = new LiveSocket({
      ...options.socket,
      url: options.url,
      onMessage: (message) => {
        if (message.type === "room") {
          options.onRoom?.();
          return;
        }
        this.queue.push(message);
        this.request();
      },
      onStatus: (status) => {
        this.status = status;
        this.request();
      },
    });
  }

  start(): void {
    this.socket.start();
  }

  stop(): void {
    this.cancelFlush?.();
    this.cancelFlush = null;
    this.socket.stop();
  }

  private request(): void {
    this.cancelFlush ??= this.schedule(() => this.flush());
  }

  private flush(): void {
    this.cancelFlush = null;
    const messages = this.queue;
    this.queue = [];
    const result = applyBatch(this.state, this.options.venue, messages, this.options.myToken());
    this.state = result.state;
    if (result.gap) this.socket.resync();
    this.options.onUpdate({
      state: this.state,
      // "Live" means a map is shown and current, not merely an open socket.
      status: this.status.kind === "live" && !this.state ? { kind: "connecting" } : this.status,
      applied: result.applied,
      snapshot: result.snapshot,
    });
  }
}
