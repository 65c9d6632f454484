import type { Venue } from "./venue";

// Keyboard movement between seats: geometric, so it works for any layout (curved rows,
// several sections) without knowing how rows are laid out.

export type Direction = "left" | "right" | "up" | "down";

const VECTORS: Record<Direction, [number, number]> = {
  left: [-1, 0],
  right: [1, 0],
  up: [0, -1],
  down: [0, 1],
};

export function firstSeat(venue: Venue): number {
  const section = venue.sections.find((s) => s.end > s.start);
  return section ? section.start : -1;
}

export function lastSeat(venue: Venue): number {
  const section = venue.sections.findLast((s) => s.end > s.start);
  return section ? section.end - 1 : -1;
}

/**
 * The nearest seat whose direction from `from` is within ±45° of the arrow's (y grows
 * down, like the screen). Left and right stay in the seat's row while the row goes on.
 * -1 when there is none that way.
 */
export function nearestInDirection(venue: Venue, from: number, direction: Direction): number {
  const [ux, uy] = VECTORS[direction];
  const x0 = venue.xs[from];
  const y0 = venue.ys[from];
  const sameRowFirst = direction === "left" || direction === "right";
  let best = -1;
  let bestDistance = Infinity;
  let bestInRow = -1;
  let bestInRowDistance = Infinity;
  for (let i = 0; i < venue.count; i++) {
    if (i === from) continue;
    const dx = venue.xs[i] - x0;
    const dy = venue.ys[i] - y0;
    const along = dx * ux + dy * uy;
    const across = Math.abs(dx * uy - dy * ux);
    // Within ±45°: the step along the arrow is at least the step across it.
    if (along <= 0 || across > along + 1e-9) continue;
    const distance = dx * dx + dy * dy;
    if (distance < bestDistance) {
      best = i;
      bestDistance = distance;
    }
    if (
      sameRowFirst &&
      distance < bestInRowDistance &&
      venue.sectionOf[i] === venue.sectionOf[from] &&
      venue.rows[i] === venue.rows[from]
    ) {
      bestInRow = i;
      bestInRowDistance = distance;
    }
  }
  return bestInRow !== -1 ? bestInRow : best;
}
