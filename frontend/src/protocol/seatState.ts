import { placeKey, type Venue } from "../map/venue";
import type { SaleStatus, SeatEnvelope, ServerMessage, SnapshotMessage, Stats } from "../types";

// The live seat map as pure functions of (layout, snapshot, envelopes). The seq rules here
// are the whole consistency protocol: a seat event applies only on top of the one before it.

/** Server states, one byte per seat (indexes of Venue). */
export const FREE = 0;
export const HELD = 1;
export const MINE = 2;
export const RESERVED = 3;
export const BLOCKED = 4;
export type SeatCode = typeof FREE | typeof HELD | typeof MINE | typeof RESERVED | typeof BLOCKED;

// "m" comes only from older servers, which built a snapshot per socket; now see `mine`.
const CODE_OF_CHAR: Record<string, SeatCode> = { f: FREE, h: HELD, m: MINE, r: RESERVED, b: BLOCKED };

export interface SeatState {
  /** Seq of the last seat change applied (the snapshot's, then each envelope's). */
  seq: number;
  statsSeq: number;
  codes: Uint8Array;
  stats: Stats;
  saleStatus: SaleStatus;
  /** A gap was seen: seat events are ignored until the next snapshot replaces the map. */
  awaitingSnapshot: boolean;
}

export type Outcome = "applied" | "stale" | "gap" | "ignored";

export interface BatchResult {
  state: SeatState | null;
  /** Seat envelopes that changed the map, in order: the hold logic watches its token. */
  applied: SeatEnvelope[];
  /** At least one gap: the caller asks the server for a resync (once). */
  gap: boolean;
  snapshot: boolean;
}

export function stateFromSnapshot(venue: Venue, snapshot: SnapshotMessage): SeatState {
  // Seats the snapshot does not mention cannot be sold: show them as blocked, not free.
  const codes = new Uint8Array(venue.count).fill(BLOCKED);
  const index = new Map<string, number>();
  venue.sections.forEach((section) => {
    for (let i = section.start; i < section.end; i++) {
      index.set(placeKey(section.id, venue.rows[i], venue.numbers[i]), i);
    }
  });
  for (const section of snapshot.seats) {
    for (const row of section.rows) {
      row.numbers.forEach((number, n) => {
        const seat = index.get(placeKey(section.section_id, row.row, number));
        const code = CODE_OF_CHAR[row.states[n]];
        if (seat !== undefined && code !== undefined) codes[seat] = code;
      });
    }
  }
  // The states are shared by every socket, so the buyer's holds read "h" there; `mine` says
  // which. A listed seat that is not "h" (reserved or released since) keeps its state.
  for (const key of snapshot.mine ?? []) {
    const seat = venue.indexByKey.get(key);
    if (seat !== undefined && codes[seat] === HELD) codes[seat] = MINE;
  }
  return {
    seq: snapshot.seq,
    statsSeq: snapshot.stats.seq,
    codes,
    stats: snapshot.stats,
    saleStatus: snapshot.sale_status,
    awaitingSnapshot: false,
  };
}

/** Applies one seat envelope; `state` is not modified. */
export function applyEnvelope(
  state: SeatState,
  venue: Venue,
  envelope: SeatEnvelope,
  myToken: string | null,
): { state: SeatState; outcome: Outcome } {
  const draft = { ...state, codes: state.codes.slice() };
  const outcome = envelopeInto(draft, venue, envelope, myToken);
  return { state: outcome === "applied" || outcome === "gap" ? draft : state, outcome };
}

/** Applies a stats body; `state` is not modified. */
export function applyStats(state: SeatState, stats: Stats): { state: SeatState; outcome: Outcome } {
  // Stats are coalesced, so their seqs skip values: only order matters, never gaps.
  if (stats.seq <= state.statsSeq) return { state, outcome: "stale" };
  return { state: { ...state, stats, statsSeq: stats.seq }, outcome: "applied" };
}

/**
 * Applies every message of one animation frame, copying the seat array once. The input
 * state is not modified.
 */
export function applyBatch(
  state: SeatState | null,
  venue: Venue,
  messages: ServerMessage[],
  myToken: string | null,
): BatchResult {
  let draft: SeatState | null = state && { ...state, codes: state.codes.slice() };
  const result: BatchResult = { state, applied: [], gap: false, snapshot: false };
  let changed = false;
  for (const message of messages) {
    if (message.type === "snapshot") {
      draft = stateFromSnapshot(venue, message);
      result.applied = []; // the snapshot supersedes what came before it
      result.snapshot = true;
      changed = true;
    } else if (message.type === "stats.updated") {
      if (!draft) continue;
      const next = applyStats(draft, statsBody(message));
      if (next.outcome === "applied") {
        draft = next.state;
        changed = true;
      }
    } else if (message.type !== "pong" && isSeatEnvelope(message)) {
      if (!draft) continue; // nothing to apply it to before the first snapshot
      const outcome = envelopeInto(draft, venue, message, myToken);
      if (outcome === "applied") result.applied.push(message);
      if (outcome === "gap") result.gap = true;
      if (outcome === "applied" || outcome === "gap") changed = true;
    }
  }
  if (changed) result.state = draft;
  return result;
}

/** stats.updated carries its body under `data`; older producers put it at the top level. */
export function statsBody(message: { data?: Stats } & Partial<Stats>): Stats {
  return (message.data ?? message) as Stats;
}

function isSeatEnvelope(message: ServerMessage): message is SeatEnvelope {
  return (
    message.type === "seat.held" ||
    message.type === "seat.reserved" ||
    message.type === "seat.released" ||
    message.type === "seat.blocked"
  );
}

/** Mutates `draft` (which owns its `codes`). */
function envelopeInto(
  draft: SeatState,
  venue: Venue,
  envelope: SeatEnvelope,
  myToken: string | null,
): Outcome {
  if (draft.awaitingSnapshot) return "ignored";
  if (envelope.seq <= draft.seq) return "stale";
  if (envelope.seq > draft.seq + 1) {
    draft.awaitingSnapshot = true;
    return "gap";
  }
  const code = codeAfter(envelope, myToken);
  for (const key of envelope.data.seats) {
    const seat = venue.indexByKey.get(key);
    if (seat !== undefined) draft.codes[seat] = code;
  }
  draft.seq = envelope.seq;
  return "applied";
}

function codeAfter(envelope: SeatEnvelope, myToken: string | null): SeatCode {
  switch (envelope.type) {
    case "seat.held":
      return myToken !== null && envelope.data.hold_token === myToken ? MINE : HELD;
    case "seat.reserved":
      return RESERVED;
    case "seat.released":
      return FREE;
    case "seat.blocked":
      return BLOCKED;
  }
}

// --- "mine" -------------------------------------------------------------------------------

export interface MyHold {
  token: string;
  seats: string[];
  expiresAt: string;
  /** The seat seq of the hold's own seat.held, from the POST response. */
  seq: number;
}

/**
 * Whether a seat shows as the buyer's own. The WebSocket's seat.held and the POST's answer
 * race: whichever lands first, the map ends the same.
 */
export function isMine(code: number, inMyHold: boolean, holdSeq: number, stateSeq: number): boolean {
  if (code === MINE) return true;
  if (!inMyHold) return false;
  if (code === HELD) return true;
  // The POST answered first: its seat.held (seq holdSeq) is still on its way.
  return code === FREE && stateSeq < holdSeq;
}

export type SeatView = "free" | "selected" | "mine" | "held" | "reserved" | "blocked";

export function seatView(
  state: SeatState,
  seat: number,
  hold: { seats: Set<number>; seq: number } | null,
  selected: boolean,
): SeatView {
  const code = state.codes[seat];
  if (isMine(code, hold !== null && hold.seats.has(seat), hold?.seq ?? 0, state.seq)) return "mine";
  switch (code) {
    case FREE:
      return selected ? "selected" : "free";
    case HELD:
      return "held";
    case RESERVED:
      return "reserved";
    default:
      return "blocked";
  }
}

/**
 * The stored hold, checked against a fresh snapshot: only seats still held by this buyer
 * stay. `strict` (the first snapshot after a reload) requires the server to call the seat
 * the buyer's (its `mine` list, or "m" from older servers); later a plain "h" is accepted
 * too, since a socket opened before the buyer's session existed cannot tell mine from held.
 */
export function holdAfterSnapshot(
  hold: MyHold,
  state: SeatState,
  venue: Venue,
  strict: boolean,
): MyHold | null {
  if (state.seq < hold.seq) return hold; // the snapshot predates the hold
  const seats = hold.seats.filter((key) => {
    const seat = venue.indexByKey.get(key);
    if (seat === undefined) return false;
    const code = state.codes[seat];
    return code === MINE || (!strict && code === HELD);
  });
  if (seats.length === 0) return null;
  return seats.length === hold.seats.length ? hold : { ...hold, seats };
}
