import type { RoomMessage, RoomPlace, RoomStatus } from "../types";

// Waiting-room frames and answers for the tests: event 7, open, 12 a minute.

export function figures(overrides: Partial<RoomMessage> = {}): RoomMessage {
  return {
    type: "room",
    event_id: 7,
    state: "open",
    sale_starts_at: "2030-01-01T10:00:00Z",
    drawn: true,
    serving: 0,
    waiting: 2,
    rate_per_minute: 12,
    ...overrides,
  };
}

export function place(ticket: number | null): RoomPlace {
  return { ticket, position: null, ahead: null, eta_seconds: null, admitted: false, pass_expires_at: null };
}

export function status(ticket: number | null, overrides: Partial<RoomStatus> = {}): RoomStatus {
  const { type: _type, ...rest } = figures();
  return { ...rest, place: place(ticket), ...overrides };
}
