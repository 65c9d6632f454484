import { ApiError, apiCommand, errorText, serverNow } from "../api";
import type { FeedUpdate } from "../live/liveFeed";
import type { Venue } from "../map/venue";
import { holdAfterSnapshot, type MyHold } from "../protocol/seatState";
import type { HoldResponse, ReserveResponse } from "../types";
import { holdRestore, holdSave, type StorageLike } from "./holdStore";

// The buyer's one active hold and what happens to it: the four commands, expiry, and what
// the live feed says about it (another tab releasing it, the server expiring it). No React
// here: `useHold` subscribes a component to a HoldClient.

export interface Reservation {
  id: string;
  seats: string[];
}

export interface HoldNotices {
  /** Seats another buyer got first (409 seats_unavailable), exactly as the server listed. */
  conflict: string[] | null;
  error: string | null;
  expired: boolean;
  reservation: Reservation | null;
}

export type HoldRequest = { seats: string[] } | { best: { count: number; section?: number } };

export type HoldAction = "hold" | "extend" | "release" | "confirm";

/** What the page shows: a new object whenever any of it changes. */
export interface HoldView {
  hold: MyHold | null;
  /** The command on its way, if any. */
  busy: HoldAction | null;
  notices: HoldNotices;
}

export const NO_NOTICES: HoldNotices = { conflict: null, error: null, expired: false, reservation: null };

/** What the hold has left on the server's clock, in ms: negative once it is over. */
export function holdRemainingMs(hold: MyHold, serverTime: number): number {
  return Date.parse(hold.expiresAt) - serverTime;
}

/**
 * What one applied frame of the live feed means for the hold. A snapshot keeps the seats it
 * shows as the buyer's (`strict`: only those it lists as mine, for a hold restored after a
 * reload); a seat.released of the hold drops its seats, or ends the hold when the server
 * expired it; a seat.reserved of it ends it, unless this tab is the one confirming.
 */
export function holdAfterFeed(
  hold: MyHold,
  update: FeedUpdate,
  venue: Venue,
  { strict, confirming }: { strict: boolean; confirming: boolean },
): { hold: MyHold | null; expired: boolean } {
  let current: MyHold | null = hold;
  if (update.snapshot && update.state) {
    current = holdAfterSnapshot(current, update.state, venue, strict);
  }
  for (const envelope of update.applied) {
    if (!current || envelope.data.hold_token !== current.token) continue;
    if (envelope.type === "seat.released") {
      if (envelope.data.reason === "expired") return { hold: null, expired: true };
      const gone = new Set(envelope.data.seats);
      const seats = current.seats.filter((key) => !gone.has(key));
      current = seats.length > 0 ? { ...current, seats } : null;
    } else if (envelope.type === "seat.reserved" && !confirming) {
      current = null; // confirmed from another tab of this session
    }
  }
  return { hold: current, expired: false };
}

export interface HoldClientOptions {
  eventId: number;
  /** Where the hold outlives a reload: the tab's sessionStorage. */
  storage: StorageLike;
  /**
   * A command was answered 403 not_admitted (the waiting room's pass ran out): the buyer
   * goes back to the waiting room. Without one, that answer is shown as an error.
   */
  onNotAdmitted?: () => void;
}

/**
 * The hold's state and commands. Its expiry timer runs between `start()` and `stop()`;
 * `subscribe` and `view` are what React's useSyncExternalStore wants.
 */
export class HoldClient {
  onNotAdmitted: (() => void) | undefined;
  private readonly eventId: number;
  private readonly storage: StorageLike;
  private state: HoldView;
  private readonly listeners = new Set<() => void>();
  // A hold restored after a reload is trusted only once a snapshot shows it as mine.
  private unconfirmedRestore: boolean;
  // While this tab's reserve is on its way, its own seat.reserved does not end the hold.
  private confirming = false;
  private running = false;
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: HoldClientOptions) {
    this.eventId = options.eventId;
    this.storage = options.storage;
    this.onNotAdmitted = options.onNotAdmitted;
    const hold = holdRestore(this.storage, this.eventId, serverNow());
    this.state = { hold, busy: null, notices: NO_NOTICES };
    this.unconfirmedRestore = hold !== null;
  }

  readonly view = (): HoldView => this.state;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** The hold's token now, for the live feed to tell the buyer's seat.held from others'. */
  readonly myToken = (): string | null => this.state.hold?.token ?? null;

  start(): void {
    this.running = true;
    this.expiryArm();
  }

  stop(): void {
    this.running = false;
    this.expiryArm();
  }

  /** Holds the seats; resolves to the seats lost to other buyers (empty when it worked). */
  async create(request: HoldRequest): Promise<string[] | null> {
    this.update({ busy: "hold", notices: NO_NOTICES });
    try {
      const made = await apiCommand<HoldResponse>(`/api/events/${this.eventId}/holds`, request);
      this.unconfirmedRestore = false;
      this.holdSet({ token: made.hold_token, seats: made.seats, expiresAt: made.expires_at, seq: made.seq });
      return [];
    } catch (error) {
      if (error instanceof ApiError && error.code === "seats_unavailable") {
        this.update({ notices: { ...NO_NOTICES, conflict: error.seats } });
        return error.seats;
      }
      this.fail(error);
      return null;
    } finally {
      this.update({ busy: null });
    }
  }

  async extend(): Promise<void> {
    await this.command("extend", async (hold) => {
      const extended = await apiCommand<{ expires_at: string }>(`/api/holds/${hold.token}/extend`, {});
      const now = this.state.hold;
      if (now?.token === hold.token) this.holdSet({ ...now, expiresAt: extended.expires_at });
    });
  }

  async release(): Promise<void> {
    await this.command("release", async (hold) => {
      await apiCommand(`/api/holds/${hold.token}/release`, {});
      this.holdSet(null);
    });
  }

  async confirm(): Promise<void> {
    this.confirming = true;
    try {
      await this.command("confirm", async (hold) => {
        const done = await apiCommand<ReserveResponse>(`/api/holds/${hold.token}/reserve`, {});
        this.holdSet(null);
        this.update({ notices: { ...NO_NOTICES, reservation: { id: done.reservation_id, seats: done.seats } } });
      });
    } finally {
      this.confirming = false;
    }
  }

  dismiss(): void {
    this.update({ notices: NO_NOTICES });
  }

  /** What the live feed says about the hold: called once per applied frame. */
  feedUpdate(update: FeedUpdate, venue: Venue): void {
    const hold = this.state.hold;
    if (!hold || !update.state) return;
    const next = holdAfterFeed(hold, update, venue, {
      strict: this.unconfirmedRestore,
      confirming: this.confirming,
    });
    if (update.snapshot) this.unconfirmedRestore = false;
    if (next.expired) this.expire();
    else if (next.hold !== hold) this.holdSet(next.hold);
  }

  /** A command on the current hold (none: nothing to do). */
  private async command(action: HoldAction, send: (hold: MyHold) => Promise<void>): Promise<void> {
    const hold = this.state.hold;
    if (!hold) return;
    this.update({ busy: action, notices: NO_NOTICES });
    try {
      await send(hold);
    } catch (error) {
      this.fail(error);
    } finally {
      this.update({ busy: null });
    }
  }

  private fail(error: unknown): void {
    const code = error instanceof ApiError ? error.code : null;
    if (code === "hold_expired") this.expire();
    else if (code === "not_admitted" && this.onNotAdmitted) this.onNotAdmitted();
    else this.update({ notices: { ...this.state.notices, error: errorText(error) } });
  }

  private expire(): void {
    this.holdSet(null);
    this.update({ notices: { ...NO_NOTICES, expired: true } });
  }

  private holdSet(hold: MyHold | null): void {
    holdSave(this.storage, this.eventId, hold);
    this.update({ hold });
    this.expiryArm();
  }

  /** The hold ends itself at its expiry on the server's clock, unless stopped. */
  private expiryArm(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    const hold = this.state.hold;
    if (!this.running || !hold) return;
    this.expiryTimer = setTimeout(
      () => {
        this.expiryTimer = null;
        this.expire();
      },
      Math.max(0, holdRemainingMs(hold, serverNow())),
    );
  }

  private update(change: Partial<HoldView>): void {
    this.state = { ...this.state, ...change };
    for (const listener of this.listeners) listener();
  }
}
