import { useCallback, useEffect, useLayoutEffect, useMemo, useRef } from "react";
import type { SeatState } from "../protocol/seatState";
import { firstSeat, lastSeat, nearestInDirection, type Direction } from "./navigation";
import { drawMeasured } from "./benchProbe";
import { drawVenue } from "./renderer";
import { SpatialGrid } from "./spatialGrid";
import type { Venue } from "./venue";
import {
  ensureVisible,
  fitViewport,
  panBy,
  scaleLimits,
  toWorld,
  zoomAt,
  type ScaleLimits,
  type Viewport,
} from "./viewport";

// The venue on a <canvas>: pan, zoom (wheel, buttons, pinch), click/tap and keyboard. The
// viewport lives in a ref, not React state: dragging redraws the canvas, never re-renders.

export interface SeatCanvasProps {
  venue: Venue;
  state: SeatState | null;
  selected: ReadonlySet<number>;
  hold: { seats: Set<number>; seq: number } | null;
  focused: number;
  onFocusSeat: (seat: number) => void;
  /** Click, tap, Enter or Space on a seat. */
  onActivateSeat: (seat: number) => void;
  onHoverSeat: (seat: number) => void;
}

const ARROWS: Record<string, Direction> = {
  ArrowLeft: "left",
  ArrowRight: "right",
  ArrowUp: "up",
  ArrowDown: "down",
};
const CLICK_SLOP_PX = 6;
const ZOOM_STEP = 1.5;
const FOCUS_MARGIN_PX = 40;

function venueAspect(venue: Venue): number {
  const { minX, minY, maxX, maxY } = venue.bounds;
  return (maxY - minY) / Math.max(maxX - minX, 1e-6);
}

interface Gesture {
  pointers: Map<number, { x: number; y: number }>;
  startX: number;
  startY: number;
  moved: boolean;
}

export function SeatCanvas(props: SeatCanvasProps) {
  const { venue, focused } = props;
  const boxRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const propsRef = useRef(props);
  const view = useRef({
    vp: null as Viewport | null,
    limits: { min: 0, max: Infinity } as ScaleLimits,
    width: 0,
    height: 0,
    // Until the buyer pans or zooms, a resize re-fits the venue.
    userMoved: false,
    frame: 0,
    hovered: -1,
  });
  const gesture = useRef<Gesture>({ pointers: new Map(), startX: 0, startY: 0, moved: false });
  const grid = useMemo(() => new SpatialGrid(venue.xs, venue.ys, venue.pitch * 2), [venue]);

  const draw = useCallback(() => {
    const v = view.current;
    v.frame = 0;
    const canvas = canvasRef.current;
    const ctx = canvas?.getContext("2d");
    if (!canvas || !ctx || !v.vp || v.width === 0) return;
    const dpr = window.devicePixelRatio || 1;
    const pixelWidth = Math.round(v.width * dpr);
    const pixelHeight = Math.round(v.height * dpr);
    if (canvas.width !== pixelWidth || canvas.height !== pixelHeight) {
      canvas.width = pixelWidth;
      canvas.height = pixelHeight;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const p = propsRef.current;
    const viewport = v.vp;
    drawMeasured(() =>
      drawVenue(ctx, {
        venue: p.venue,
        state: p.state,
        viewport,
        width: v.width,
        height: v.height,
        selected: p.selected,
        hold: p.hold,
        focused: p.focused,
        showFocus: p.focused >= 0,
      }),
    );
  }, []);

  const requestDraw = useCallback(() => {
    const v = view.current;
    if (!v.frame) v.frame = window.requestAnimationFrame(draw);
  }, [draw]);

  const setViewport = useCallback(
    (vp: Viewport, byUser: boolean) => {
      view.current.vp = vp;
      if (byUser) view.current.userMoved = true;
      requestDraw();
    },
    [requestDraw],
  );

  const fit = useCallback(() => {
    const v = view.current;
    if (v.width === 0) return;
    const fitted = fitViewport(propsRef.current.venue.bounds, v.width, v.height);
    v.limits = scaleLimits(fitted, propsRef.current.venue.pitch);
    v.userMoved = false;
    setViewport(fitted, false);
  }, [setViewport]);

  const zoomBy = useCallback(
    (factor: number, sx?: number, sy?: number) => {
      const v = view.current;
      if (!v.vp) return;
      setViewport(zoomAt(v.vp, factor, sx ?? v.width / 2, sy ?? v.height / 2, v.limits), true);
    },
    [setViewport],
  );

  // Every prop change is a redraw; the props are read by the next frame, not captured.
  useLayoutEffect(() => {
    propsRef.current = props;
    requestDraw();
  });

  useEffect(() => () => window.cancelAnimationFrame(view.current.frame), []);

  useEffect(() => {
    const box = boxRef.current;
    if (!box) return;
    const observer = new ResizeObserver(([entry]) => {
      const v = view.current;
      v.width = entry.contentRect.width;
      v.height = entry.contentRect.height;
      if (!v.vp || !v.userMoved) fit();
      else requestDraw();
    });
    observer.observe(box);
    // A changed devicePixelRatio (zooming the page, another screen) comes with a resize.
    window.addEventListener("resize", requestDraw);
    return () => {
      observer.disconnect();
      window.removeEventListener("resize", requestDraw);
    };
  }, [fit, requestDraw]);

  useEffect(() => {
    fit();
  }, [venue, fit]);

  // Keep the keyboard cursor in view.
  useEffect(() => {
    const v = view.current;
    if (focused < 0 || !v.vp) return;
    const next = ensureVisible(v.vp, venue.xs[focused], venue.ys[focused], v.width, v.height, FOCUS_MARGIN_PX);
    if (next !== v.vp) setViewport(next, true);
  }, [focused, venue, setViewport]);

  // React's onWheel is passive; preventing the page scroll needs our own listener.
  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const onWheel = (event: WheelEvent) => {
      event.preventDefault();
      const unit = event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? 800 : 1;
      const rect = canvas.getBoundingClientRect();
      zoomBy(Math.exp(-event.deltaY * unit * 0.002), event.clientX - rect.left, event.clientY - rect.top);
    };
    canvas.addEventListener("wheel", onWheel, { passive: false });
    return () => canvas.removeEventListener("wheel", onWheel);
  }, [zoomBy]);

  const seatAt = useCallback(
    (clientX: number, clientY: number, touch: boolean): number => {
      const v = view.current;
      const canvas = canvasRef.current;
      if (!v.vp || !canvas) return -1;
      const rect = canvas.getBoundingClientRect();
      const [x, y] = toWorld(v.vp, clientX - rect.left, clientY - rect.top);
      // A finger is bigger than a mouse pointer: a tap may land a little off the seat.
      const reach = Math.max(venue.pitch * 0.6, (touch ? 16 : 6) / v.vp.scale);
      return grid.nearest(x, y, reach);
    },
    [grid, venue],
  );

  const onPointerDown = (event: React.PointerEvent<HTMLCanvasElement>) => {
    boxRef.current?.focus({ preventScroll: true });
    event.currentTarget.setPointerCapture(event.pointerId);
    const g = gesture.current;
    g.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (g.pointers.size === 1) {
      g.startX = event.clientX;
      g.startY = event.clientY;
      g.moved = false;
    } else {
      g.moved = true; // a pinch is never a tap
    }
  };

  const onPointerMove = (event: React.PointerEvent<HTMLCanvasElement>) => {
    const g = gesture.current;
    const v = view.current;
    const last = g.pointers.get(event.pointerId);
    if (!last) {
      if (event.pointerType === "mouse") {
        const seat = seatAt(event.clientX, event.clientY, false);
        if (seat !== v.hovered) {
          v.hovered = seat;
          propsRef.current.onHoverSeat(seat);
        }
      }
      return;
    }
    if (!v.vp) return;
    const now = { x: event.clientX, y: event.clientY };
    if (g.pointers.size === 1) {
      if (!g.moved && Math.hypot(now.x - g.startX, now.y - g.startY) < CLICK_SLOP_PX) return;
      g.moved = true;
      g.pointers.set(event.pointerId, now);
      setViewport(panBy(v.vp, now.x - last.x, now.y - last.y), true);
    } else if (g.pointers.size === 2) {
      const other = [...g.pointers.entries()].find(([id]) => id !== event.pointerId)?.[1];
      if (!other) return;
      g.pointers.set(event.pointerId, now);
      const rect = event.currentTarget.getBoundingClientRect();
      const before = { x: (last.x + other.x) / 2, y: (last.y + other.y) / 2 };
      const after = { x: (now.x + other.x) / 2, y: (now.y + other.y) / 2 };
      const spreadBefore = Math.hypot(last.x - other.x, last.y - other.y) || 1;
      const spreadAfter = Math.hypot(now.x - other.x, now.y - other.y) || 1;
      const panned = panBy(v.vp, after.x - before.x, after.y - before.y);
      setViewport(
        zoomAt(panned, spreadAfter / spreadBefore, after.x - rect.left, after.y - rect.top, v.limits),
        true,
      );
    }
  };

  const onPointerUp = (event: React.PointerEvent<HTMLCanvasElement>) => {
    const g = gesture.current;
    if (!g.pointers.delete(event.pointerId)) return;
    if (g.pointers.size === 0 && !g.moved) {
      const seat = seatAt(event.clientX, event.clientY, event.pointerType !== "mouse");
      if (seat >= 0) {
        propsRef.current.onFocusSeat(seat);
        propsRef.current.onActivateSeat(seat);
      }
    }
  };

  const onPointerCancel = (event: React.PointerEvent<HTMLCanvasElement>) => {
    gesture.current.pointers.delete(event.pointerId);
    gesture.current.moved = true;
  };

  const onPointerLeave = () => {
    if (view.current.hovered !== -1) {
      view.current.hovered = -1;
      propsRef.current.onHoverSeat(-1);
    }
  };

  const onKeyDown = (event: React.KeyboardEvent<HTMLDivElement>) => {
    const p = propsRef.current;
    let next = -1;
    const direction = ARROWS[event.key];
    if (direction) {
      next = p.focused < 0 ? firstSeat(venue) : nearestInDirection(venue, p.focused, direction);
      if (next < 0) next = p.focused; // nothing that way: stay
    } else if (event.key === "Home") {
      next = firstSeat(venue);
    } else if (event.key === "End") {
      next = lastSeat(venue);
    } else if (event.key === "Enter" || event.key === " ") {
      if (p.focused >= 0) p.onActivateSeat(p.focused);
    } else if (event.key === "+" || event.key === "=") {
      zoomBy(ZOOM_STEP);
    } else if (event.key === "-" || event.key === "_") {
      zoomBy(1 / ZOOM_STEP);
    } else {
      return;
    }
    event.preventDefault();
    if (next >= 0 && next !== p.focused) p.onFocusSeat(next);
  };

  return (
    <div className="seat-map">
      <div
        ref={boxRef}
        className="seat-map__canvas"
        // Phones size the map to the venue's shape instead of a fixed, mostly empty box.
        style={{ "--venue-aspect": venueAspect(venue) } as React.CSSProperties}
        tabIndex={0}
        role="application"
        aria-label="Seat map, use arrow keys to move between seats, Enter or Space to select"
        aria-describedby="seat-focus"
        onKeyDown={onKeyDown}
      >
        <canvas
          ref={canvasRef}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerCancel={onPointerCancel}
          onPointerLeave={onPointerLeave}
        />
      </div>
      <div className="seat-map__zoom">
        <button type="button" aria-label="Zoom in" onClick={() => zoomBy(ZOOM_STEP)}>
          +
        </button>
        <button type="button" aria-label="Zoom out" onClick={() => zoomBy(1 / ZOOM_STEP)}>
          −
        </button>
        <button type="button" aria-label="Fit the whole venue" onClick={fit}>
          ⤢
        </button>
      </div>
    </div>
  );
}
