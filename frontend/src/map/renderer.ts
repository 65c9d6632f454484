import { seatView, type SeatState, type SeatView } from "../protocol/seatState";
import { STAGE_HEIGHT, STAGE_WIDTH, type Venue } from "./venue";
import { toScreen, type Viewport } from "./viewport";

// Draws the whole venue in one pass: seats are bucketed by colour so each colour is one
// path and one fill, whatever the seat count. Called at most once per animation frame.

export const SEAT_COLORS = {
  mine: "#1d5fd1",
  held: "#c9a35f",
  reserved: "#50565e",
  blocked: "#dcdcdc",
  blockedMark: "#8c8c8c",
  loading: "#e4e4e4",
  selectedRing: "#111111",
  focusRing: "#e0007a",
  stage: "#2f3640",
};

const SQUARE_BELOW_PX = 2.5;

export interface DrawInput {
  venue: Venue;
  state: SeatState | null;
  viewport: Viewport;
  width: number;
  height: number;
  selected: ReadonlySet<number>;
  hold: { seats: Set<number>; seq: number } | null;
  focused: number;
  showFocus: boolean;
}

export function viewColor(venue: Venue, seat: number, view: SeatView): string {
  switch (view) {
    case "free":
    case "selected":
      return venue.sections[venue.sectionOf[seat]].category?.color ?? "#3a9d5d";
    case "mine":
      return SEAT_COLORS.mine;
    case "held":
      return SEAT_COLORS.held;
    case "reserved":
      return SEAT_COLORS.reserved;
    case "blocked":
      return SEAT_COLORS.blocked;
  }
}

export function drawVenue(ctx: CanvasRenderingContext2D, input: DrawInput): void {
  const { venue, state, viewport: vp, width, height } = input;
  ctx.clearRect(0, 0, width, height);
  drawStage(ctx, input);

  const r = Math.max(0.6, venue.pitch * vp.scale * 0.4);
  const buckets = new Map<string, number[]>();
  const blocked: number[] = [];
  const mine: number[] = [];
  const selected: number[] = [];
  const sx = new Float64Array(venue.count);
  const sy = new Float64Array(venue.count);
  for (let i = 0; i < venue.count; i++) {
    const x = venue.xs[i] * vp.scale + vp.x;
    const y = venue.ys[i] * vp.scale + vp.y;
    if (x < -r || y < -r || x > width + r || y > height + r) continue;
    sx[i] = x;
    sy[i] = y;
    const isSelected = input.selected.has(i);
    let color: string = SEAT_COLORS.loading;
    if (state) {
      const view = seatView(state, i, input.hold, isSelected);
      color = viewColor(venue, i, view);
      if (view === "blocked") blocked.push(i);
      if (view === "mine") mine.push(i);
    }
    if (isSelected) selected.push(i);
    let bucket = buckets.get(color);
    if (!bucket) buckets.set(color, (bucket = []));
    bucket.push(i);
  }

  for (const [color, seats] of buckets) {
    ctx.fillStyle = color;
    ctx.beginPath();
    if (r < SQUARE_BELOW_PX) {
      // Seats a few pixels wide: squares look the same as circles and cost far less.
      for (const i of seats) ctx.rect(sx[i] - r, sy[i] - r, 2 * r, 2 * r);
    } else {
      for (const i of seats) seatShape(ctx, venue, i, sx[i], sy[i], r);
    }
    ctx.fill();
  }

  if (r >= 2.5) {
    // Marks that keep states apart without colour: a cross on seats not for sale, a ring
    // inside the buyer's own seats.
    ctx.lineWidth = Math.max(1, r * 0.18);
    ctx.strokeStyle = SEAT_COLORS.blockedMark;
    ctx.beginPath();
    const d = r * 0.55;
    for (const i of blocked) {
      ctx.moveTo(sx[i] - d, sy[i] - d);
      ctx.lineTo(sx[i] + d, sy[i] + d);
      ctx.moveTo(sx[i] + d, sy[i] - d);
      ctx.lineTo(sx[i] - d, sy[i] + d);
    }
    ctx.stroke();
    ctx.strokeStyle = "#ffffff";
    ctx.beginPath();
    for (const i of mine) seatShape(ctx, venue, i, sx[i], sy[i], r * 0.55);
    ctx.stroke();
  }

  if (selected.length > 0) {
    ctx.lineWidth = Math.max(1.5, r * 0.3);
    ctx.strokeStyle = SEAT_COLORS.selectedRing;
    ctx.beginPath();
    for (const i of selected) seatShape(ctx, venue, i, sx[i], sy[i], r + ctx.lineWidth);
    ctx.stroke();
  }

  drawSectionNames(ctx, input, r);

  if (input.showFocus && input.focused >= 0 && input.focused < venue.count) {
    const [fx, fy] = toScreen(vp, venue.xs[input.focused], venue.ys[input.focused]);
    const ring = Math.max(r + 5, 7);
    ctx.lineWidth = 4;
    ctx.strokeStyle = "#ffffff";
    ctx.beginPath();
    ctx.arc(fx, fy, ring, 0, Math.PI * 2);
    ctx.stroke();
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = SEAT_COLORS.focusRing;
    ctx.stroke();
  }
}

/** Accessible seats are squares, the others circles. */
function seatShape(
  ctx: CanvasRenderingContext2D,
  venue: Venue,
  seat: number,
  x: number,
  y: number,
  r: number,
): void {
  if (venue.accessible[seat]) {
    ctx.moveTo(x - r, y - r);
    ctx.rect(x - r, y - r, 2 * r, 2 * r);
  } else {
    ctx.moveTo(x + r, y);
    ctx.arc(x, y, r, 0, Math.PI * 2);
  }
}

function drawStage(ctx: CanvasRenderingContext2D, { venue, viewport: vp }: DrawInput): void {
  const [x, y] = toScreen(vp, venue.focal.x, venue.focal.y);
  const w = Math.max(40, venue.pitch * STAGE_WIDTH * vp.scale);
  const h = Math.max(16, venue.pitch * STAGE_HEIGHT * vp.scale);
  ctx.fillStyle = SEAT_COLORS.stage;
  ctx.beginPath();
  ctx.roundRect(x - w / 2, y - h / 2, w, h, Math.min(8, h / 3));
  ctx.fill();
  ctx.fillStyle = "#ffffff";
  ctx.font = `600 ${Math.min(16, Math.max(10, h * 0.5))}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText("STAGE", x, y);
}

function drawSectionNames(ctx: CanvasRenderingContext2D, input: DrawInput, r: number): void {
  const { venue, viewport: vp } = input;
  const size = Math.min(16, Math.max(10, r * 2));
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.lineJoin = "round";
  ctx.lineWidth = 3;
  ctx.strokeStyle = "rgba(255,255,255,0.9)";
  ctx.fillStyle = "#222";
  for (const section of venue.sections) {
    if (section.end === section.start) continue;
    const [x, y] = toScreen(vp, section.labelX, section.labelY);
    const top = y - r - 4;
    ctx.strokeText(section.name, x, top);
    ctx.fillText(section.name, x, top);
  }
}
