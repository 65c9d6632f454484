import type { HoldNotices } from "../hold/holdClient";

export interface NoticesProps {
  notices: HoldNotices;
  label: (key: string) => string;
  onDismiss: () => void;
}

/** The outcome of the buyer's last action: a conflict, an error, an expiry, a reservation. */
export function Notices({ notices, label, onDismiss }: NoticesProps) {
  const { conflict, error, expired, reservation } = notices;
  if (!conflict && !error && !expired && !reservation) return null;
  return (
    <div className="notices">
      {conflict && (
        <div className="notice notice--warn" role="alert" data-testid="conflict">
          <p>
            <strong>Sorry, {conflict.length === 1 ? "this seat was" : "these seats were"} just taken:</strong>
          </p>
          <ul>
            {conflict.map((key) => (
              <li key={key}>{label(key)}</li>
            ))}
          </ul>
          <p>Nothing was held. The rest of your selection is kept: you can hold it now.</p>
        </div>
      )}
      {error && (
        <p className="notice notice--error" role="alert">
          {error}
        </p>
      )}
      {expired && (
        <p className="notice notice--warn" role="alert">
          Your hold expired and its seats were released.
        </p>
      )}
      {reservation && (
        <div className="notice notice--ok" data-testid="reservation" role="status">
          <p>
            <strong>Reserved</strong> · reservation <code>{reservation.id}</code>
          </p>
          <ul>
            {reservation.seats.map((key) => (
              <li key={key}>{label(key)}</li>
            ))}
          </ul>
        </div>
      )}
      <button type="button" className="link" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}
