import type { ConnectionStatus } from "../live/socket";

export function connectionText(status: ConnectionStatus): string {
  switch (status.kind) {
    case "connecting":
      return "Connecting…";
    case "live":
      return "Live";
    case "reconnecting":
      return "Reconnecting…";
    case "closed":
      return status.reason;
  }
}

export function ConnectionBadge({ status }: { status: ConnectionStatus }) {
  return (
    <span className={`connection connection--${status.kind}`} role="status">
      <span className="connection__dot" aria-hidden="true" />
      <span data-testid="connection">{connectionText(status)}</span>
    </span>
  );
}
