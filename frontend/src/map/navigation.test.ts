import { describe, expect, it } from "vitest";
import { testVenue } from "../testing/fixtures";
import { venueFromLayout } from "./venue";
import { firstSeat, lastSeat, nearestInDirection } from "./navigation";

const venue = testVenue();
const at = (key: string) => venue.indexByKey.get(key)!;
const key = (seat: number) => venue.keys[seat];

describe("keyboard navigation", () => {
  it("Home and End are the first and last seats in layout order", () => {
    expect(key(firstSeat(venue))).toBe("A-1-1");
    expect(key(lastSeat(venue))).toBe("B-1-6");
  });

  it("moves along the row and between rows", () => {
    expect(key(nearestInDirection(venue, at("A-1-1"), "right"))).toBe("A-1-2");
    expect(key(nearestInDirection(venue, at("A-1-3"), "left"))).toBe("A-1-2");
    expect(key(nearestInDirection(venue, at("A-1-3"), "down"))).toBe("A-2-3");
    expect(key(nearestInDirection(venue, at("A-2-3"), "up"))).toBe("A-1-3");
  });

  it("crosses to the next section at a row's end, and stays put at the edge", () => {
    expect(key(nearestInDirection(venue, at("A-1-6"), "right"))).toBe("B-1-1");
    expect(nearestInDirection(venue, at("A-1-1"), "left")).toBe(-1);
    expect(nearestInDirection(venue, at("A-1-1"), "up")).toBe(-1);
  });

  it("only looks within 45° of the arrow", () => {
    // From A-2-6 (50, 12), right: B-1-1 (100, 0) is 13° up, inside the cone.
    expect(key(nearestInDirection(venue, at("A-2-6"), "right"))).toBe("B-1-1");
    // Down from A-1-6 (50, 0): A-2-6 straight below, not A-2-5 which is closer to 45°.
    expect(key(nearestInDirection(venue, at("A-1-6"), "down"))).toBe("A-2-6");
  });

  it("prefers the same row for left and right even when another row is nearer", () => {
    const staggered = venueFromLayout({
      event_id: 1,
      venue: "v",
      currency: "EUR",
      focal_point: { x: 0, y: 0 },
      categories: [],
      sections: [
        {
          id: 1,
          name: "S",
          category_id: 1,
          seats: [
            ["S-A-1", "A", 1, 0, 0, false],
            ["S-A-2", "A", 2, 10, 0, false],
            ["S-B-1", "B", 1, 4, 3, false], // closer, 37° below the arrow
          ],
        },
      ],
    });
    expect(staggered.keys[nearestInDirection(staggered, 0, "right")]).toBe("S-A-2");
    expect(staggered.keys[nearestInDirection(staggered, 1, "left")]).toBe("S-A-1");
    // Row B has nothing further right: the nearest seat that way, in another row.
    expect(staggered.keys[nearestInDirection(staggered, 2, "right")]).toBe("S-A-2");
  });
});
