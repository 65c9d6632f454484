import type { MyHold } from "../protocol/seatState";

// The buyer's hold outlives a reload of the tab (sessionStorage is per tab and per
// session, like the server's view of "my" seats); the next snapshot confirms or drops it.

export type StorageLike = Pick<Storage, "getItem" | "setItem" | "removeItem">;

interface Stored {
  hold_token: string;
  seats: string[];
  expires_at: string;
  seq: number;
}

export function holdKey(eventId: number): string {
  return `seats.hold.${eventId}`;
}

export function holdSave(storage: StorageLike, eventId: number, hold: MyHold | null): void {
  if (!hold) {
    storage.removeItem(holdKey(eventId));
    return;
  }
  const stored: Stored = {
    hold_token: hold.token,
    seats: hold.seats,
    expires_at: hold.expiresAt,
    seq: hold.seq,
  };
  storage.setItem(holdKey(eventId), JSON.stringify(stored));
}

/** The stored hold, unless it is unreadable or already expired (then it is removed). */
export function holdRestore(storage: StorageLike, eventId: number, now: number): MyHold | null {
  const raw = storage.getItem(holdKey(eventId));
  if (raw === null) return null;
  let hold: MyHold | null = null;
  try {
    const stored = JSON.parse(raw) as Partial<Stored>;
    if (
      typeof stored.hold_token === "string" &&
      Array.isArray(stored.seats) &&
      stored.seats.length > 0 &&
      typeof stored.expires_at === "string" &&
      Date.parse(stored.expires_at) > now
    ) {
      hold = {
        token: stored.hold_token,
        seats: stored.seats.map(String),
        expiresAt: stored.expires_at,
        seq: typeof stored.seq === "number" ? stored.seq : 0,
      };
    }
  } catch {
    // Not ours or corrupt: same as absent.
  }
  if (!hold) storage.removeItem(holdKey(eventId));
  return hold;
}
