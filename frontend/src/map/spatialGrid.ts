// Hit testing: a uniform grid of seat indexes (compressed rows), so a click looks at the
// seats of a few cells instead of all 20,000.

const MAX_CELLS = 1 << 20;

export class SpatialGrid {
  private readonly xs: ArrayLike<number>;
  private readonly ys: ArrayLike<number>;
  private readonly cell: number;
  private readonly minX: number;
  private readonly minY: number;
  private readonly cols: number;
  private readonly rows: number;
  /** Seats of cell c are items[starts[c]..starts[c+1]-1]. */
  private readonly starts: Int32Array;
  private readonly items: Int32Array;

  constructor(xs: ArrayLike<number>, ys: ArrayLike<number>, cellSize: number) {
    this.xs = xs;
    this.ys = ys;
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    for (let i = 0; i < xs.length; i++) {
      minX = Math.min(minX, xs[i]);
      maxX = Math.max(maxX, xs[i]);
      minY = Math.min(minY, ys[i]);
      maxY = Math.max(maxY, ys[i]);
    }
    if (xs.length === 0) minX = minY = maxX = maxY = 0;
    let cell = cellSize > 0 ? cellSize : 1;
    // A sparse venue with tiny seats would need a huge grid: coarser cells instead.
    while (((maxX - minX) / cell + 1) * ((maxY - minY) / cell + 1) > MAX_CELLS) cell *= 2;
    this.cell = cell;
    this.minX = minX;
    this.minY = minY;
    this.cols = Math.floor((maxX - minX) / cell) + 1;
    this.rows = Math.floor((maxY - minY) / cell) + 1;
    const counts = new Int32Array(this.cols * this.rows + 1);
    const cellOf = new Int32Array(xs.length);
    for (let i = 0; i < xs.length; i++) {
      cellOf[i] = this.cellIndex(xs[i], ys[i]);
      counts[cellOf[i] + 1]++;
    }
    for (let c = 1; c < counts.length; c++) counts[c] += counts[c - 1];
    this.starts = counts;
    this.items = new Int32Array(xs.length);
    const fill = counts.slice(0, -1);
    for (let i = 0; i < xs.length; i++) this.items[fill[cellOf[i]]++] = i;
  }

  private cellIndex(x: number, y: number): number {
    const cx = Math.floor((x - this.minX) / this.cell);
    const cy = Math.floor((y - this.minY) / this.cell);
    return cy * this.cols + cx;
  }

  /** The seat closest to (x, y) within `maxDistance`, or -1. */
  nearest(x: number, y: number, maxDistance: number): number {
    const reach = Math.ceil(maxDistance / this.cell);
    const cx = Math.floor((x - this.minX) / this.cell);
    const cy = Math.floor((y - this.minY) / this.cell);
    let best = -1;
    let bestDistance = maxDistance * maxDistance;
    for (let gy = Math.max(0, cy - reach); gy <= Math.min(this.rows - 1, cy + reach); gy++) {
      for (let gx = Math.max(0, cx - reach); gx <= Math.min(this.cols - 1, cx + reach); gx++) {
        const c = gy * this.cols + gx;
        for (let k = this.starts[c]; k < this.starts[c + 1]; k++) {
          const seat = this.items[k];
          const d = (this.xs[seat] - x) ** 2 + (this.ys[seat] - y) ** 2;
          if (d <= bestDistance && (d < bestDistance || best === -1 || seat < best)) {
            best = seat;
            bestDistance = d;
          }
        }
      }
    }
    return best;
  }
}
