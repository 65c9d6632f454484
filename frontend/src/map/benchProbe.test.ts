import { afterEach, describe, expect, it } from "vitest";
import { DRAW_MEASURE, MAX_DRAW_MEASURES, drawMeasured } from "./benchProbe";

// bench/seatmap.py reads exactly this: performance.getEntriesByName('seatmap-draw').
const measures = () => performance.getEntriesByName("seatmap-draw", "measure");

afterEach(() => performance.clearMeasures(DRAW_MEASURE));

describe("benchProbe", () => {
  it("times each draw as a seatmap-draw measure", () => {
    let drawn = 0;
    drawMeasured(() => drawn++);
    drawMeasured(() => drawn++);
    expect(drawn).toBe(2);
    expect(DRAW_MEASURE).toBe("seatmap-draw");
    expect(measures()).toHaveLength(2);
    expect(measures()[0].duration).toBeGreaterThanOrEqual(0);
  });

  it("keeps a bounded number of them on a long-open page", () => {
    for (let i = 0; i < MAX_DRAW_MEASURES + 10; i++) drawMeasured(() => {});
    expect(measures().length).toBeLessThanOrEqual(MAX_DRAW_MEASURES);
    expect(measures().length).toBeGreaterThan(0);
  });
});
