import type { Venue } from "../map/venue";
import { seatLabel, seatPrice } from "../seatDescription";

export interface SelectionPanelProps {
  venue: Venue;
  selected: number[];
  /** Selected seats that someone else took since: the hold attempt will report them. */
  unavailable: ReadonlySet<number>;
  max: number;
  formatPrice: (amount: number) => string;
  /** Why holding is not possible now, or null. */
  holdBlocked: string | null;
  busy: boolean;
  note: string | null;
  onRemove: (seat: number) => void;
  onClear: () => void;
  onHold: () => void;
}

export function SelectionPanel(props: SelectionPanelProps) {
  const { venue, selected, max, formatPrice } = props;
  const total = selected.reduce((sum, seat) => sum + seatPrice(venue, seat), 0);
  return (
    <section className="panel" aria-labelledby="selection-title">
      <h2 id="selection-title">
        Your selection{" "}
        <span className="muted">
          ({selected.length} of max {max})
        </span>
      </h2>
      {selected.length === 0 ? (
        <p className="muted">Pick free seats on the map (click, tap, or arrow keys and Space).</p>
      ) : (
        <ul className="seat-list">
          {selected.map((seat) => (
            <li key={seat}>
              <span>
                {seatLabel(venue, seat)}
                {props.unavailable.has(seat) && <strong className="warn"> · just taken</strong>}
              </span>
              <span className="seat-list__price">{formatPrice(seatPrice(venue, seat))}</span>
              <button
                type="button"
                className="link"
                aria-label={`Remove ${seatLabel(venue, seat)}`}
                onClick={() => props.onRemove(seat)}
              >
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      {selected.length > 0 && (
        <p className="total">
          Total <strong>{formatPrice(total)}</strong>
        </p>
      )}
      {props.note && <p className="note">{props.note}</p>}
      {props.holdBlocked && selected.length > 0 && <p className="note">{props.holdBlocked}</p>}
      <div className="actions">
        <button
          type="button"
          className="primary"
          data-testid="hold-button"
          disabled={selected.length === 0 || props.holdBlocked !== null || props.busy}
          onClick={props.onHold}
        >
          {props.busy ? "Holding…" : "Hold seats"}
        </button>
        <button type="button" disabled={selected.length === 0} onClick={props.onClear}>
          Clear
        </button>
      </div>
    </section>
  );
}
