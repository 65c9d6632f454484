// Keeps the box office figures on an event's admin page live without a reload
// (templates/admin/reservations/event/box_office.html): every few seconds it reads the
// stats API (docs/api.md, Stats) and rewrites the cells marked data-stat.
"use strict";
{
  const REFRESH_MS = 3000;
  const box = document.getElementById("box-office");
  const status = box.querySelector("[data-box-office-status]");

  function fill(row, counts) {
    // A section created after the page was drawn has no row: a reload shows it.
    if (!row) return;
    for (const cell of row.querySelectorAll("[data-stat]")) {
      cell.textContent = counts[cell.dataset.stat];
    }
  }

  async function refresh() {
    try {
      const response = await fetch(box.dataset.statsUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const stats = await response.json();
      fill(box.querySelector('tr[data-section="event"]'), stats);
      for (const section of stats.sections) {
        fill(box.querySelector(`tr[data-section="${section.section_id}"]`), section);
      }
      status.textContent = `Live: updated ${new Date().toLocaleTimeString()}.`;
    } catch (error) {
      // Keep the last figures on screen, say they are stale, and try again.
      status.textContent = `Not refreshed (${error.message}): figures may be stale; retrying.`;
    }
  }

  // The next read starts only once the last one ended, so a slow server never gets a
  // pile of them; a hidden tab reads nothing until it is shown again.
  async function loop() {
    if (!document.hidden) await refresh();
    setTimeout(loop, REFRESH_MS);
  }
  setTimeout(loop, REFRESH_MS);
}
