import { describe, expect, it } from "vitest";
import { ensureVisible, fitViewport, panBy, scaleLimits, toScreen, toWorld, zoomAt } from "./viewport";

describe("viewport", () => {
  it("fits the bounds centred in the view", () => {
    const vp = fitViewport({ minX: 0, minY: 0, maxX: 100, maxY: 50 }, 420, 420, 10);
    expect(vp.scale).toBeCloseTo(4); // width-limited: 400 px for 100 units
    const [left, top] = toScreen(vp, 0, 0);
    const [right, bottom] = toScreen(vp, 100, 50);
    expect(left).toBeCloseTo(10);
    expect(right).toBeCloseTo(410);
    expect((top + bottom) / 2).toBeCloseTo(210);
  });

  it("zooms around a point, which stays where it was on screen", () => {
    const vp = { scale: 2, x: 30, y: -10 };
    const [wx, wy] = toWorld(vp, 123, 77);
    const zoomed = zoomAt(vp, 3, 123, 77);
    expect(zoomed.scale).toBe(6);
    const [sx, sy] = toScreen(zoomed, wx, wy);
    expect(sx).toBeCloseTo(123);
    expect(sy).toBeCloseTo(77);
  });

  it("clamps the zoom to the limits", () => {
    const fit = { scale: 4, x: 0, y: 0 };
    const limits = scaleLimits(fit, 10);
    expect(limits).toEqual({ min: 2, max: 8 });
    expect(zoomAt(fit, 100, 0, 0, limits).scale).toBe(8);
    expect(zoomAt(fit, 0.01, 0, 0, limits).scale).toBe(2);
  });

  it("pans by pixels", () => {
    expect(panBy({ scale: 2, x: 1, y: 2 }, 10, -5)).toEqual({ scale: 2, x: 11, y: -3 });
  });

  it("ensureVisible pans just enough, and not at all when in view", () => {
    const vp = { scale: 1, x: 0, y: 0 };
    expect(ensureVisible(vp, 50, 50, 200, 100, 20)).toBe(vp);
    const moved = ensureVisible(vp, 300, 50, 200, 100, 20);
    expect(toScreen(moved, 300, 50)).toEqual([180, 50]);
    const up = ensureVisible(vp, 10, -40, 200, 100, 20);
    expect(toScreen(up, 10, -40)).toEqual([20, 20]);
  });
});
