import type { Category, Layout } from "../types";

// The layout flattened into typed arrays indexed by seat: the renderer, hit testing and
// keyboard navigation walk 20,000 seats per frame or key press, so no per-seat objects.

export interface VenueSection {
  id: number;
  name: string;
  category: Category | undefined;
  /** Seats of this section are indexes start..end-1 (layout order). */
  start: number;
  end: number;
  /** Where the section's name is drawn: centred above its seats. */
  labelX: number;
  labelY: number;
}

export interface Bounds {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

export interface Venue {
  name: string;
  currency: string;
  focal: { x: number; y: number };
  categories: Category[];
  sections: VenueSection[];
  count: number;
  keys: string[];
  rows: string[];
  numbers: Int32Array;
  xs: Float64Array;
  ys: Float64Array;
  accessible: Uint8Array;
  /** Index into `sections` for each seat. */
  sectionOf: Int32Array;
  indexByKey: Map<string, number>;
  /** Distance between neighbouring seats, in layout units: sizes seats and hit targets. */
  pitch: number;
  /** All seats and the stage. */
  bounds: Bounds;
}

/** The stage drawn at the focal point, in seat pitches. */
export const STAGE_WIDTH = 6;
export const STAGE_HEIGHT = 1.2;

export function placeKey(sectionId: number, row: string, number: number): string {
  return `${sectionId}\u0000${row}\u0000${number}`;
}

export function venueFromLayout(layout: Layout): Venue {
  const count = layout.sections.reduce((sum, section) => sum + section.seats.length, 0);
  const keys: string[] = new Array(count);
  const rows: string[] = new Array(count);
  const numbers = new Int32Array(count);
  const xs = new Float64Array(count);
  const ys = new Float64Array(count);
  const accessible = new Uint8Array(count);
  const sectionOf = new Int32Array(count);
  const indexByKey = new Map<string, number>();
  const categoryById = new Map(layout.categories.map((c) => [c.id, c]));
  const bounds: Bounds = {
    minX: layout.focal_point.x,
    minY: layout.focal_point.y,
    maxX: layout.focal_point.x,
    maxY: layout.focal_point.y,
  };
  const sections: VenueSection[] = [];
  let i = 0;
  layout.sections.forEach((section, s) => {
    const start = i;
    let minX = Infinity;
    let maxX = -Infinity;
    let minY = Infinity;
    for (const [key, row, number, x, y, isAccessible] of section.seats) {
      keys[i] = key;
      rows[i] = row;
      numbers[i] = number;
      xs[i] = x;
      ys[i] = y;
      accessible[i] = isAccessible ? 1 : 0;
      sectionOf[i] = s;
      indexByKey.set(key, i);
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      bounds.minX = Math.min(bounds.minX, x);
      bounds.maxX = Math.max(bounds.maxX, x);
      bounds.minY = Math.min(bounds.minY, y);
      bounds.maxY = Math.max(bounds.maxY, y);
      i++;
    }
    sections.push({
      id: section.id,
      name: section.name,
      category: categoryById.get(section.category_id),
      start,
      end: i,
      labelX: start === i ? 0 : (minX + maxX) / 2,
      labelY: minY,
    });
  });
  const pitch = seatPitch(xs, ys, rows, sectionOf);
  // Room for the seats' own radius and the section names above them.
  bounds.minX -= pitch;
  bounds.maxX += pitch;
  bounds.minY -= pitch * 2;
  bounds.maxY += pitch;
  bounds.minX = Math.min(bounds.minX, layout.focal_point.x - (STAGE_WIDTH / 2) * pitch);
  bounds.maxX = Math.max(bounds.maxX, layout.focal_point.x + (STAGE_WIDTH / 2) * pitch);
  bounds.minY = Math.min(bounds.minY, layout.focal_point.y - STAGE_HEIGHT * pitch);
  bounds.maxY = Math.max(bounds.maxY, layout.focal_point.y + STAGE_HEIGHT * pitch);
  return {
    name: layout.venue,
    currency: layout.currency,
    focal: layout.focal_point,
    categories: layout.categories,
    sections,
    count,
    keys,
    rows,
    numbers,
    xs,
    ys,
    accessible,
    sectionOf,
    indexByKey,
    pitch,
    bounds,
  };
}

/** The median gap between consecutive seats of a row: layouts use any unit and spacing. */
function seatPitch(
  xs: Float64Array,
  ys: Float64Array,
  rows: string[],
  sectionOf: Int32Array,
): number {
  const gaps: number[] = [];
  for (let i = 1; i < xs.length && gaps.length < 5000; i++) {
    if (sectionOf[i] !== sectionOf[i - 1] || rows[i] !== rows[i - 1]) continue;
    const gap = Math.hypot(xs[i] - xs[i - 1], ys[i] - ys[i - 1]);
    if (gap > 0) gaps.push(gap);
  }
  if (gaps.length === 0) return 1;
  gaps.sort((a, b) => a - b);
  return gaps[gaps.length >> 1];
}

export function seatCategory(venue: Venue, seat: number): Category | undefined {
  return venue.sections[venue.sectionOf[seat]].category;
}
