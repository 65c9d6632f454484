import { ApiError, apiCommand, errorText } from "../api";
import { LiveSocket, type ConnectionStatus, type LiveSocketOptions } from "../live/socket";
import type { RoomMessage, RoomPassResponse, RoomStatus } from "../types";
import { roomNext, roomView, type RoomModel, type RoomView } from "./roomState";

// The waiting room's steps: take a place (POST), follow the room on the event's socket
// until it is the buyer's turn, take the pass (POST; an HttpOnly cookie), then hand over
// to the seat map, whose own socket carries the pass and gets the seats.

export interface RoomApi {
  join(eventId: number): Promise<RoomStatus>;
  pass(eventId: number): Promise<RoomPassResponse>;
}

export const httpRoomApi: RoomApi = {
  join: (eventId) => apiCommand<RoomStatus>(`/api/events/${eventId}/room`, {}),
  pass: (eventId) => apiCommand<RoomPassResponse>(`/api/events/${eventId}/room/pass`, {}),
};

export interface WaitingRoomOptions {
  eventId: number;
  url: string;
  onView: (view: RoomView) => void;
  /** No room, or the pass is taken: show the seat map. Called once, then nothing more. */
  onAdmitted: () => void;
  /** A failure's text, null once a request works again. */
  onError: (text: string | null) => void;
  onStatus?: (status: ConnectionStatus) => void;
  api?: RoomApi;
  socket?: Pick<LiveSocketOptions, "createSocket" | "timers" | "random">;
}

/** After a failure other than a spent place, the join is tried again after this long. */
export const RETRY_MS = 5_000;

export class WaitingRoomClient {
  private readonly options: WaitingRoomOptions;
  private readonly api: RoomApi;
  private model: RoomModel | null = null;
  private socket: LiveSocket | null = null;
  private busy = false; // one request at a time: frames that come meanwhile ask for nothing
  private stopped = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: WaitingRoomOptions) {
    this.options = options;
    this.api = options.api ?? httpRoomApi;
  }

  start(): void {
    void this.join();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.socket?.stop();
    this.socket = null;
  }

  private join(): Promise<void> {
    return this.request(() => this.api.join(this.options.eventId), (status) => this.apply(status));
  }

  private claim(): Promise<void> {
    return this.request(
      () => this.api.pass(this.options.eventId),
      () => this.admitted(),
    );
  }

  private apply(frame: RoomStatus | RoomMessage): void {
    if (this.stopped) return;
    this.model = roomNext(this.model, frame);
    const view = roomView(this.model);
    this.options.onView(view);
    if (view.phase === "map") this.admitted();
    else if (view.phase === "join") void this.join();
    else if (view.phase === "admitted") void this.claim();
    else this.listen();
  }

  /** The event's socket, in its waiting-room mode; it reconnects by itself. */
  private listen(): LiveSocket {
    if (!this.socket) {
      this.socket = new LiveSocket({
        ...this.options.socket,
        url: this.options.url,
        onMessage: (message) => {
          if (message.type === "room") this.apply(message);
        },
        onStatus: (status) => this.options.onStatus?.(status),
      });
      this.socket.start();
    }
    return this.socket;
  }

  private admitted(): void {
    this.stop();
    this.options.onAdmitted();
  }

  private async request<T>(send: () => Promise<T>, then: (answer: T) => void): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    let answer: T;
    try {
      answer = await send();
    } catch (error) {
      this.busy = false;
      if (!this.stopped) this.failed(error);
      return;
    }
    this.busy = false;
    if (this.stopped) return;
    this.options.onError(null);
    then(answer);
  }

  private failed(error: unknown): void {
    const code = error instanceof ApiError ? error.code : null;
    if (code === "place_expired" || code === "not_in_queue") {
      void this.join(); // a new place at the back
    } else if (code === "not_your_turn") {
      this.listen().resync(); // the figures were ahead of the server: ask for the place
    } else {
      this.options.onError(errorText(error));
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        void this.join();
      }, RETRY_MS);
    }
  }
}
