// Shapes of the backend's JSON (docs/api.md), as the app reads them.

export type SaleStatus = "on_sale" | "closed" | string;

export interface EventInfo {
  id: number;
  name: string;
  starts_at: string;
  sale_status: SaleStatus;
  venue: string;
  hold_ttl_seconds: number;
  max_seats_per_hold: number;
}

/** [key, row, number, x, y, accessible] */
export type LayoutSeat = [string, string, number, number, number, boolean];

export interface Category {
  id: number;
  name: string;
  price: string;
  color: string;
}

export interface LayoutSection {
  id: number;
  name: string;
  category_id: number;
  seats: LayoutSeat[];
}

export interface Layout {
  event_id: number;
  venue: string;
  currency: string;
  focal_point: { x: number; y: number };
  categories: Category[];
  sections: LayoutSection[];
}

export interface SectionCounts {
  total: number;
  free: number;
  held: number;
  reserved: number;
  blocked: number;
  revenue: string;
}

export interface SectionStats extends SectionCounts {
  section_id: number;
  name: string;
}

export interface Stats extends SectionCounts {
  event_id: number;
  seq: number;
  seat_seq?: number;
  sections: SectionStats[];
}

export interface SnapshotRow {
  row: string;
  numbers: number[];
  states: string;
}

export interface SnapshotSection {
  section_id: number;
  name: string;
  rows: SnapshotRow[];
}

export interface SnapshotMessage {
  type: "snapshot";
  event_id: number;
  seq: number;
  sale_status: SaleStatus;
  seats: SnapshotSection[];
  stats: Stats;
  /**
   * The buyer's own held seats ("A-1-2"). The server shares one snapshot between all sockets
   * of an event, so its states say "h" for every hold; this list tells which are "mine".
   */
  mine?: string[];
}

export type SeatEventType = "seat.held" | "seat.reserved" | "seat.released" | "seat.blocked";

/**
 * A seat event. Items of a "changes" frame carry only what a map applies (type, seq, the
 * seats and hold token); the rest of the envelope stays on the server.
 */
export interface SeatEnvelope {
  id?: string;
  type: SeatEventType;
  event_id?: number;
  seq: number;
  occurred_at?: string;
  data: {
    seats: string[];
    hold_token?: string;
    expires_at?: string;
    reservation_id?: string;
    reason?: string;
  };
}

export interface StatsMessage {
  type: "stats.updated";
  event_id?: number;
  seq: number;
  data?: Stats;
}

/** A message as the page applies it (protocol/seatState.ts; room frames: room/roomState.ts). */
export type ServerMessage =
  | SnapshotMessage
  | SeatEnvelope
  | StatsMessage
  | RoomMessage
  | { type: "pong" };

/**
 * Seat and stats changes coalesced into one WebSocket frame, in the order they happened
 * (of the stats, only the newest). The socket unpacks it: each item applies exactly as if
 * it had come on its own.
 */
export interface ChangesMessage {
  type: "changes";
  event_id: number;
  items: (SeatEnvelope | StatsMessage)[];
}

/** What arrives on the WebSocket: a "changes" frame, or one message (older servers). */
export type SocketFrame = ServerMessage | ChangesMessage;

export interface HoldResponse {
  hold_token: string;
  event_id: number;
  seats: string[];
  expires_at: string;
  seq: number;
}

export interface ReserveResponse {
  reservation_id: string;
  event_id: number;
  seats: string[];
  seq: number;
}

// --- the waiting room (docs/api.md, Waiting room) ----------------------------------------

export type RoomStateName = "off" | "before" | "open" | "paused";

/** The buyer's place in the queue, as the server computed it when it answered. */
export interface RoomPlace {
  /** Null until the start's random draw. */
  ticket: number | null;
  /** 1: next; 0: admitted. */
  position: number | null;
  ahead: number | null;
  eta_seconds: number | null;
  admitted: boolean;
  pass_expires_at: string | null;
}

/** The room's figures: what every buyer of the event sees alike. */
export interface RoomFigures {
  event_id: number;
  state: RoomStateName;
  sale_starts_at: string | null;
  drawn: boolean;
  /** Tickets up to this one are admitted. */
  serving: number;
  waiting: number;
  rate_per_minute: number;
}

/** GET/POST /api/events/{id}/room: the figures and the buyer's place (null: none). */
export interface RoomStatus extends RoomFigures {
  place: RoomPlace | null;
}

/**
 * A `room` frame of the live socket: the buyer's own (with `place`) first and on resync,
 * then the room's figures for everyone (no `place` key) about every second.
 */
export interface RoomMessage extends RoomFigures {
  type: "room";
  place?: RoomPlace | null;
}

/** POST /api/events/{id}/room/pass; the pass itself is an HttpOnly cookie. */
export interface RoomPassResponse {
  needed: boolean;
  expires_at: string | null;
}
