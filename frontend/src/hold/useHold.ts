import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, apiCommand, errorText, serverNow } from "../api";
import type { FeedUpdate } from "../live/liveFeed";
import type { Venue } from "../map/venue";
import { holdAfterSnapshot, type MyHold } from "../protocol/seatState";
import type { HoldResponse, ReserveResponse } from "../types";
import { holdRestore, holdSave } from "./holdStore";

// The buyer's one active hold and what happens to it: the four commands, expiry, and what
// the live feed says about it (another tab releasing it, the server expiring it).

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

const NO_NOTICES: HoldNotices = { conflict: null, error: null, expired: false, reservation: null };

function storage(): Storage {
  return window.sessionStorage;
}

/**
 * `onNotAdmitted`: a command answered 403 not_admitted (the waiting room's pass ran out):
 * the buyer goes back to the waiting room.
 */
export function useHold(eventId: number, venue: Venue, onNotAdmitted?: () => void) {
  const [hold, setHoldState] = useState<MyHold | null>(() =>
    holdRestore(storage(), eventId, serverNow()),
  );
  const [busy, setBusy] = useState<HoldAction | null>(null);
  const [notices, setNotices] = useState<HoldNotices>(NO_NOTICES);
  // Refs let the live feed's callback and the commands see the hold as it is now.
  const holdRef = useRef(hold);
  // A hold restored after a reload is trusted only once a snapshot shows it as mine.
  const unconfirmedRestore = useRef(hold !== null);
  const confirming = useRef(false);

  const setHold = useCallback(
    (next: MyHold | null) => {
      holdRef.current = next;
      holdSave(storage(), eventId, next);
      setHoldState(next);
    },
    [eventId],
  );

  const expire = useCallback(() => {
    setHold(null);
    setNotices({ ...NO_NOTICES, expired: true });
  }, [setHold]);

  useEffect(() => {
    if (!hold) return;
    const timer = window.setTimeout(expire, Math.max(0, Date.parse(hold.expiresAt) - serverNow()));
    return () => window.clearTimeout(timer);
  }, [hold, expire]);

  const fail = useCallback(
    (error: unknown) => {
      if (error instanceof ApiError && error.code === "hold_expired") expire();
      else if (error instanceof ApiError && error.code === "not_admitted" && onNotAdmitted) onNotAdmitted();
      else setNotices((n) => ({ ...n, error: errorText(error) }));
    },
    [expire, onNotAdmitted],
  );

  /** Creates a hold; resolves to the seats lost to other buyers (empty when it worked). */
  const create = useCallback(
    async (request: HoldRequest): Promise<string[] | null> => {
      setBusy("hold");
      setNotices(NO_NOTICES);
      try {
        const made = await apiCommand<HoldResponse>(`/api/events/${eventId}/holds`, request);
        unconfirmedRestore.current = false;
        setHold({ token: made.hold_token, seats: made.seats, expiresAt: made.expires_at, seq: made.seq });
        return [];
      } catch (error) {
        if (error instanceof ApiError && error.code === "seats_unavailable") {
          setNotices({ ...NO_NOTICES, conflict: error.seats });
          return error.seats;
        }
        fail(error);
        return null;
      } finally {
        setBusy(null);
      }
    },
    [eventId, setHold, fail],
  );

  const extend = useCallback(async () => {
    const current = holdRef.current;
    if (!current) return;
    setBusy("extend");
    setNotices(NO_NOTICES);
    try {
      const extended = await apiCommand<{ expires_at: string }>(
        `/api/holds/${current.token}/extend`,
        {},
      );
      if (holdRef.current?.token === current.token) {
        setHold({ ...holdRef.current, expiresAt: extended.expires_at });
      }
    } catch (error) {
      fail(error);
    } finally {
      setBusy(null);
    }
  }, [setHold, fail]);

  const release = useCallback(async () => {
    const current = holdRef.current;
    if (!current) return;
    setBusy("release");
    setNotices(NO_NOTICES);
    try {
      await apiCommand(`/api/holds/${current.token}/release`, {});
      setHold(null);
    } catch (error) {
      fail(error);
    } finally {
      setBusy(null);
    }
  }, [setHold, fail]);

  const confirm = useCallback(async () => {
    const current = holdRef.current;
    if (!current) return;
    setBusy("confirm");
    setNotices(NO_NOTICES);
    confirming.current = true;
    try {
      const done = await apiCommand<ReserveResponse>(`/api/holds/${current.token}/reserve`, {});
      setHold(null);
      setNotices({ ...NO_NOTICES, reservation: { id: done.reservation_id, seats: done.seats } });
    } catch (error) {
      fail(error);
    } finally {
      confirming.current = false;
      setBusy(null);
    }
  }, [setHold, fail]);

  /** What the live feed says about the hold: called once per applied frame. */
  const onFeedUpdate = useCallback(
    (update: FeedUpdate) => {
      let current = holdRef.current;
      if (!current || !update.state) return;
      if (update.snapshot) {
        current = holdAfterSnapshot(current, update.state, venue, unconfirmedRestore.current);
        unconfirmedRestore.current = false;
      }
      for (const envelope of update.applied) {
        if (!current || envelope.data.hold_token !== current.token) continue;
        if (envelope.type === "seat.released") {
          if (envelope.data.reason === "expired") {
            expire();
            return;
          }
          const gone = new Set(envelope.data.seats);
          const seats = current.seats.filter((key) => !gone.has(key));
          current = seats.length > 0 ? { ...current, seats } : null;
        } else if (envelope.type === "seat.reserved" && !confirming.current) {
          current = null; // confirmed from another tab of this session
        }
      }
      if (current !== holdRef.current) setHold(current);
    },
    [venue, expire, setHold],
  );

  const dismiss = useCallback(() => setNotices(NO_NOTICES), []);

  return {
    hold,
    holdRef,
    busy,
    notices,
    create,
    extend,
    release,
    confirm,
    dismiss,
    onFeedUpdate,
  };
}
