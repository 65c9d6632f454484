// What bench/seatmap.py reads from the seat map, and nothing else uses: each canvas draw is
// a "seatmap-draw" user-timing measure. The bench waits for the first one (the map drawn),
// clears them between its phases, and reads their durations:
//     performance.getEntriesByName('seatmap-draw').map(e => e.duration)
// The browser's profiler shows them too. The timeline keeps entries until cleared, so a
// long-open page keeps at most MAX_DRAW_MEASURES of them.

export const DRAW_MEASURE = "seatmap-draw";
export const MAX_DRAW_MEASURES = 5000;

let drawMeasures = 0;

/** Runs one draw of the canvas, timed as a "seatmap-draw" measure. */
export function drawMeasured(draw: () => void): void {
  const started = performance.now();
  draw();
  if (++drawMeasures > MAX_DRAW_MEASURES) {
    performance.clearMeasures(DRAW_MEASURE);
    drawMeasures = 1;
  }
  performance.measure(DRAW_MEASURE, { start: started });
}
