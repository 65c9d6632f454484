import type { Bounds } from "./venue";

// Screen = world × scale + offset, in CSS pixels. Pure functions: the canvas keeps one
// viewport and replaces it on every zoom, pan or fit.

export interface Viewport {
  scale: number;
  x: number;
  y: number;
}

export interface ScaleLimits {
  min: number;
  max: number;
}

export function toScreen(vp: Viewport, x: number, y: number): [number, number] {
  return [x * vp.scale + vp.x, y * vp.scale + vp.y];
}

export function toWorld(vp: Viewport, sx: number, sy: number): [number, number] {
  return [(sx - vp.x) / vp.scale, (sy - vp.y) / vp.scale];
}

/** The whole of `bounds`, centred, as large as fits with `padding` pixels around it. */
export function fitViewport(bounds: Bounds, width: number, height: number, padding = 16): Viewport {
  const w = Math.max(bounds.maxX - bounds.minX, 1e-6);
  const h = Math.max(bounds.maxY - bounds.minY, 1e-6);
  const scale = Math.max(
    Math.min((width - 2 * padding) / w, (height - 2 * padding) / h),
    1e-6,
  );
  return {
    scale,
    x: width / 2 - ((bounds.minX + bounds.maxX) / 2) * scale,
    y: height / 2 - ((bounds.minY + bounds.maxY) / 2) * scale,
  };
}

/** From a bit smaller than the whole venue to about 80 px per seat. */
export function scaleLimits(fit: Viewport, pitch: number): ScaleLimits {
  const min = fit.scale / 2;
  return { min, max: Math.max(min, 80 / pitch) };
}

/** Zooms by `factor`, keeping the world point under (sx, sy) where it is on screen. */
export function zoomAt(
  vp: Viewport,
  factor: number,
  sx: number,
  sy: number,
  limits?: ScaleLimits,
): Viewport {
  let scale = vp.scale * factor;
  if (limits) scale = Math.min(limits.max, Math.max(limits.min, scale));
  const [wx, wy] = toWorld(vp, sx, sy);
  return { scale, x: sx - wx * scale, y: sy - wy * scale };
}

export function panBy(vp: Viewport, dx: number, dy: number): Viewport {
  return { scale: vp.scale, x: vp.x + dx, y: vp.y + dy };
}

/** The least pan that brings (x, y) at least `margin` pixels inside the view. */
export function ensureVisible(
  vp: Viewport,
  x: number,
  y: number,
  width: number,
  height: number,
  margin: number,
): Viewport {
  const [sx, sy] = toScreen(vp, x, y);
  const m = Math.min(margin, width / 2, height / 2);
  let dx = 0;
  let dy = 0;
  if (sx < m) dx = m - sx;
  else if (sx > width - m) dx = width - m - sx;
  if (sy < m) dy = m - sy;
  else if (sy > height - m) dy = height - m - sy;
  return dx === 0 && dy === 0 ? vp : panBy(vp, dx, dy);
}
