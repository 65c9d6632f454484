import { useState } from "react";
import type { Venue } from "../map/venue";

export interface BestAvailableProps {
  venue: Venue;
  max: number;
  holdBlocked: string | null;
  busy: boolean;
  onFind: (count: number, section: number | undefined) => void;
}

export function BestAvailable({ venue, max, holdBlocked, busy, onFind }: BestAvailableProps) {
  const [count, setCount] = useState(Math.min(2, max));
  const [section, setSection] = useState("");
  const valid = Number.isInteger(count) && count >= 1 && count <= max;
  return (
    <section className="panel" aria-labelledby="best-title">
      <h2 id="best-title">Best available</h2>
      <form
        className="best"
        onSubmit={(event) => {
          event.preventDefault();
          if (valid) onFind(count, section === "" ? undefined : Number(section));
        }}
      >
        <label>
          Seats
          <input
            type="number"
            min={1}
            max={max}
            value={Number.isNaN(count) ? "" : count}
            aria-label="Number of seats"
            onChange={(event) => setCount(event.target.valueAsNumber)}
          />
        </label>
        <label>
          In
          <select aria-label="Section" value={section} onChange={(event) => setSection(event.target.value)}>
            <option value="">Any section</option>
            {venue.sections.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={!valid || holdBlocked !== null || busy}>
          Find best seats
        </button>
      </form>
      {!valid && <p className="note">Choose between 1 and {max} seats.</p>}
    </section>
  );
}
