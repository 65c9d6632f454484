import { useEffect, useState } from "react";
import { holdRemainingMs, type HoldAction } from "../hold/holdClient";
import type { MyHold } from "../protocol/seatState";
import { serverNow } from "../api";
import { countdownText } from "../format";

export interface HoldPanelProps {
  hold: MyHold;
  /** "L1 row A seat 1 (L1-A-1)" for a seat key. */
  label: (key: string) => string;
  total: string;
  busy: HoldAction | null;
  onExtend: () => void;
  onRelease: () => void;
  onConfirm: () => void;
}

function useNow(intervalMs: number): number {
  const [now, setNow] = useState(() => serverNow());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(serverNow()), intervalMs);
    return () => window.clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export function HoldPanel({ hold, label, total, busy, onExtend, onRelease, onConfirm }: HoldPanelProps) {
  const now = useNow(1000);
  const remaining = holdRemainingMs(hold, now);
  return (
    <section className="panel panel--hold" aria-labelledby="hold-title" data-testid="hold-panel">
      <h2 id="hold-title">Your hold</h2>
      <p className="countdown">
        Held for you for{" "}
        <strong data-testid="hold-countdown" aria-live="off">
          {countdownText(remaining)}
        </strong>
      </p>
      <ul className="seat-list">
        {hold.seats.map((key) => (
          <li key={key}>{label(key)}</li>
        ))}
      </ul>
      <p className="total">
        Total <strong>{total}</strong>
      </p>
      <div className="actions">
        <button
          type="button"
          className="primary"
          data-testid="hold-confirm"
          disabled={busy !== null}
          onClick={onConfirm}
        >
          {busy === "confirm" ? "Confirming…" : "Confirm"}
        </button>
        <button type="button" data-testid="hold-extend" disabled={busy !== null} onClick={onExtend}>
          Extend
        </button>
        <button type="button" data-testid="hold-release" disabled={busy !== null} onClick={onRelease}>
          Release
        </button>
      </div>
    </section>
  );
}
