import { SEAT_COLORS } from "../map/renderer";
import type { Venue } from "../map/venue";

const STATES: { label: string; color: string; mark?: "ring" | "cross" | "outline" | "square" }[] = [
  { label: "Yours (held)", color: SEAT_COLORS.mine, mark: "ring" },
  { label: "Selected", color: "#ffffff", mark: "outline" },
  { label: "Held by others", color: SEAT_COLORS.held },
  { label: "Reserved", color: SEAT_COLORS.reserved },
  { label: "Not for sale", color: SEAT_COLORS.blocked, mark: "cross" },
  { label: "Wheelchair accessible", color: "#8a8a8a", mark: "square" },
];

export function Legend({ venue, formatPrice }: { venue: Venue; formatPrice: (p: string) => string }) {
  return (
    <section className="legend" aria-labelledby="legend-title">
      <h2 id="legend-title">Legend</h2>
      <ul>
        {venue.categories.map((category) => (
          <li key={category.id}>
            <span className="swatch" style={{ background: category.color }} aria-hidden="true" />
            {category.name}: {formatPrice(category.price)} (free)
          </li>
        ))}
        {STATES.map((state) => (
          <li key={state.label}>
            <span
              className={`swatch${state.mark ? ` swatch--${state.mark}` : ""}`}
              style={{ background: state.color }}
              aria-hidden="true"
            />
            {state.label}
          </li>
        ))}
      </ul>
    </section>
  );
}
