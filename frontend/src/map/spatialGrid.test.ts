import { describe, expect, it } from "vitest";
import { testVenue } from "../testing/fixtures";
import { SpatialGrid } from "./spatialGrid";

const venue = testVenue();

describe("SpatialGrid", () => {
  const grid = new SpatialGrid(venue.xs, venue.ys, venue.pitch * 2);

  it("finds the seat under a point", () => {
    expect(venue.keys[grid.nearest(10.5, 0.4, 4)]).toBe("A-1-2");
    expect(venue.keys[grid.nearest(49, 11, 4)]).toBe("A-2-6");
    expect(venue.keys[grid.nearest(150, 0, 4)]).toBe("B-1-6");
  });

  it("finds nothing between seats or outside the venue", () => {
    expect(grid.nearest(75, 0, 4)).toBe(-1);
    expect(grid.nearest(-30, -30, 4)).toBe(-1);
    expect(grid.nearest(5, 0, 4)).toBe(-1); // exactly between A-1-1 and A-1-2, too far from both
  });

  it("agrees with a brute-force search on a large random venue", () => {
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const n = 20_000;
    const xs = Float64Array.from({ length: n }, () => random() * 1000);
    const ys = Float64Array.from({ length: n }, () => random() * 600);
    const big = new SpatialGrid(xs, ys, 8);
    for (let probe = 0; probe < 200; probe++) {
      const x = random() * 1000;
      const y = random() * 600;
      let expected = -1;
      let best = 6 * 6;
      for (let i = 0; i < n; i++) {
        const d = (xs[i] - x) ** 2 + (ys[i] - y) ** 2;
        if (d < best) {
          best = d;
          expected = i;
        }
      }
      expect(big.nearest(x, y, 6)).toBe(expected);
    }
  });
});
