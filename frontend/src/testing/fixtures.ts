import { venueFromLayout, type Venue } from "../map/venue";
import type { Layout, LayoutSeat, SeatEnvelope, SnapshotMessage, Stats } from "../types";

// The end-to-end test's venue: section A (€50) rows 1-2 × seats 1-6, section B (€30)
// row 1 × seats 1-6 further right; B-1-6 is wheelchair accessible.

function row(section: string, rowLabel: string, y: number, x0: number): LayoutSeat[] {
  return [1, 2, 3, 4, 5, 6].map(
    (n): LayoutSeat => [`${section}-${rowLabel}-${n}`, rowLabel, n, x0 + (n - 1) * 10, y, section === "B" && n === 6],
  );
}

export const LAYOUT: Layout = {
  event_id: 7,
  venue: "Browser Hall",
  currency: "EUR",
  focal_point: { x: 25, y: -20 },
  categories: [
    { id: 1, name: "Premium", price: "50.00", color: "#c0392b" },
    { id: 2, name: "Standard", price: "30.00", color: "#2980b9" },
  ],
  sections: [
    { id: 11, name: "A", category_id: 1, seats: [...row("A", "1", 0, 0), ...row("A", "2", 12, 0)] },
    { id: 12, name: "B", category_id: 2, seats: row("B", "1", 0, 100) },
  ],
};

export function testVenue(): Venue {
  return venueFromLayout(LAYOUT);
}

export function stats(seq: number, free = 18): Stats {
  return {
    event_id: 7,
    seq,
    total: 18,
    free,
    held: 18 - free,
    reserved: 0,
    blocked: 0,
    revenue: "0.00",
    sections: [],
  };
}

/** A snapshot with every seat free except those in `states` (key → state char). */
export function snapshot(seq: number, states: Record<string, string> = {}, statsSeq = seq): SnapshotMessage {
  return {
    type: "snapshot",
    event_id: 7,
    seq,
    sale_status: "on_sale",
    seats: LAYOUT.sections.map((section) => {
      const rows = new Map<string, { numbers: number[]; states: string }>();
      for (const [key, rowLabel, number] of section.seats) {
        const entry = rows.get(rowLabel) ?? { numbers: [], states: "" };
        entry.numbers.push(number);
        entry.states += states[key] ?? "f";
        rows.set(rowLabel, entry);
      }
      return {
        section_id: section.id,
        name: section.name,
        rows: [...rows].map(([label, entry]) => ({ row: label, ...entry })),
      };
    }),
    stats: stats(statsSeq),
  };
}

export function envelope(
  type: SeatEnvelope["type"],
  seq: number,
  seats: string[],
  extra: Partial<SeatEnvelope["data"]> = {},
): SeatEnvelope {
  return { id: `id-${seq}`, type, event_id: 7, seq, occurred_at: "2030-01-01T00:00:00Z", data: { seats, ...extra } };
}
