import type { RoomFigures, RoomMessage, RoomStateName, RoomStatus } from "../types";

// PURE: the waiting room as the page shows it. The server sends the buyer's ticket once
// (the join's answer, the socket's first frame, a resync) and then only the room's figures
// every second; the position is worked out here from the two.

/** What the page knows: the room's latest figures and the buyer's place. */
export interface RoomModel {
  figures: RoomFigures;
  /** False when the server says the buyer has no place: they must join (again). */
  placed: boolean;
  /** Null before the start's draw. */
  ticket: number | null;
}

/**
 * - map: no room (any more): the seat map as without one;
 * - join: the buyer has no place;
 * - waiting: in the queue (before the draw, the ticket is null);
 * - admitted: their turn: take the pass, then the map.
 */
export type RoomPhase = "map" | "join" | "waiting" | "admitted";

export interface RoomView {
  phase: RoomPhase;
  state: RoomStateName;
  saleStartsAt: string | null;
  ticket: number | null;
  /** 1: next; null before the draw. */
  position: number | null;
  ahead: number | null;
  etaSeconds: number | null;
  waiting: number;
}

/** The model after a join's answer or a socket frame; frames without `place` keep the ticket. */
export function roomNext(model: RoomModel | null, frame: RoomStatus | RoomMessage): RoomModel {
  const { event_id, state, sale_starts_at, drawn, serving, waiting, rate_per_minute } = frame;
  const figures = { event_id, state, sale_starts_at, drawn, serving, waiting, rate_per_minute };
  if (frame.place === undefined) {
    return { figures, placed: model?.placed ?? false, ticket: model?.ticket ?? null };
  }
  return { figures, placed: frame.place !== null, ticket: frame.place?.ticket ?? null };
}

/** 0 once admitted (tickets up to `serving` are). */
export function positionOf(ticket: number, serving: number): number {
  return Math.max(ticket - serving, 0);
}

/** Seconds until admission at the room's rate; null if unknown (no rate yet) or admitted. */
export function etaSeconds(position: number, ratePerMinute: number): number | null {
  return position > 0 && ratePerMinute > 0 ? Math.ceil((position * 60) / ratePerMinute) : null;
}

export function roomView({ figures, placed, ticket }: RoomModel): RoomView {
  const position = ticket === null ? null : positionOf(ticket, figures.serving);
  let phase: RoomPhase = position === 0 ? "admitted" : "waiting";
  if (figures.state === "off") phase = "map";
  else if (!placed) phase = "join";
  return {
    phase,
    state: figures.state,
    saleStartsAt: figures.sale_starts_at,
    ticket,
    position,
    ahead: position ? position - 1 : null,
    etaSeconds: position ? etaSeconds(position, figures.rate_per_minute) : null,
    waiting: figures.waiting,
  };
}

/** "less than a minute", "about 1 minute", "about 12 minutes", "about 2 hours". */
export function etaText(seconds: number | null): string {
  if (seconds === null) return "not known yet";
  if (seconds < 60) return "less than a minute";
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `about ${plural(minutes, "minute")}`;
  return `about ${plural(Math.round(minutes / 60), "hour")}`;
}

export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}
