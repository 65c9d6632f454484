import type { SeatView } from "./protocol/seatState";
import { seatCategory, type Venue } from "./map/venue";

// Every text that names a seat: the map's info line, the panels, and what a screen reader
// hears for the focused seat.

export const VIEW_WORDS: Record<SeatView, string> = {
  free: "free",
  selected: "selected",
  mine: "held by you",
  held: "held by others",
  reserved: "reserved",
  blocked: "not for sale",
};

/** "L1 row A seat 1" */
export function seatLabel(venue: Venue, seat: number): string {
  const section = venue.sections[venue.sectionOf[seat]];
  return `${section.name} row ${venue.rows[seat]} seat ${venue.numbers[seat]}`;
}

/** "L1 row A seat 1 (L1-A-1)"; a key the layout does not know is shown as it is. */
export function seatLabelWithKey(venue: Venue, key: string): string {
  const seat = venue.indexByKey.get(key);
  return seat === undefined ? key : `${seatLabel(venue, seat)} (${key})`;
}

export function seatPrice(venue: Venue, seat: number): number {
  return Number(seatCategory(venue, seat)?.price ?? 0);
}

/** What the screen reader hears for the focused seat (the end-to-end tests read it too). */
export function describeSeat(
  venue: Venue,
  seat: number,
  view: SeatView,
  formatPrice: (amount: number) => string,
): string {
  const parts = [seatLabel(venue, seat), VIEW_WORDS[view], formatPrice(seatPrice(venue, seat))];
  if (venue.accessible[seat]) parts.push("wheelchair accessible");
  return parts.join(", ");
}
