import { useEffect, useState } from "react";
import { formatDate } from "../format";
import { socketUrl, type ConnectionStatus } from "../live/socket";
import type { EventInfo } from "../types";
import { WaitingRoomClient } from "./roomClient";
import { etaText, plural, type RoomView } from "./roomState";

/**
 * The event's waiting room, until it is the buyer's turn (or the event has none): then
 * `onAdmitted` and the page shows the seat map instead.
 */
export function WaitingRoomPage({
  eventId,
  event,
  onAdmitted,
}: {
  eventId: number;
  event: EventInfo | null;
  onAdmitted: () => void;
}) {
  const [view, setView] = useState<RoomView | null>(null);
  const [status, setStatus] = useState<ConnectionStatus | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const room = new WaitingRoomClient({
      eventId,
      url: socketUrl(window.location, eventId),
      onView: setView,
      onAdmitted,
      onError: setError,
      onStatus: setStatus,
    });
    room.start();
    return () => room.stop();
  }, [eventId, onAdmitted]);

  const header = (
    <>
      <a href="/">← All events</a>
      {event && (
        <>
          <h1>{event.name}</h1>
          <p className="muted">
            {event.venue} · <time dateTime={event.starts_at}>{formatDate(event.starts_at)}</time>
          </p>
        </>
      )}
    </>
  );
  const alert = error && (
    <p className="banner" role="alert">
      {error} Trying again shortly…
    </p>
  );

  if (!view || view.phase === "map") {
    return (
      <main className="page page--narrow">
        {header}
        {alert || <p>Loading the seat map…</p>}
      </main>
    );
  }
  return (
    <main className="page page--narrow">
      {header}
      <section className="room" aria-labelledby="room-title" data-testid="waiting-room">
        <h2 id="room-title">Waiting room</h2>
        <div role="status" aria-live="polite" aria-atomic="true" data-testid="room-status">
          <RoomStatusText view={view} />
        </div>
        {view.position === null && view.state === "before" && (
          // Outside the live region: it changes with every arrival.
          <p className="muted">{plural(view.waiting, "buyer")} waiting.</p>
        )}
        {(status?.kind === "reconnecting" || status?.kind === "closed") && (
          <p className="room__connection">
            {status.kind === "closed"
              ? `${status.reason}.`
              : "Connection lost: reconnecting… Your place is kept."}
          </p>
        )}
        <p className="muted">
          Keep this page open: it moves on by itself, and the seat map opens when it is your turn.
        </p>
      </section>
      {alert}
    </main>
  );
}

function RoomStatusText({ view }: { view: RoomView }) {
  if (view.phase === "admitted") return <p className="room__lead">It is your turn! Opening the seat map…</p>;
  if (view.phase === "join") return <p className="room__lead">Taking your place in the queue…</p>;
  if (view.position === null) {
    if (view.state !== "before") return <p className="room__lead">Drawing the places…</p>;
    return (
      <>
        <p className="room__lead">
          The sale starts{" "}
          {view.saleStartsAt && (
            <>
              at <time dateTime={view.saleStartsAt}>{formatDate(view.saleStartsAt)}</time>
            </>
          )}
          .
        </p>
        <p>
          Your place is drawn at the start: everyone who is here before then gets a place in random
          order, so there is no need to hurry.
        </p>
      </>
    );
  }
  return (
    <>
      <p className="room__lead">
        Your position in the queue: <strong data-testid="room-position">{view.position}</strong>
      </p>
      <p data-testid="room-ahead">
        {view.ahead ? `${plural(view.ahead, "buyer")} ahead of you.` : "You are next."}
      </p>
      <p data-testid="room-eta">Estimated wait: {etaText(view.etaSeconds)}.</p>
      {view.state === "paused" && (
        <p className="room__paused" data-testid="room-paused">
          The queue is paused for now. You keep your place; it moves on once the sale resumes.
        </p>
      )}
      {view.state === "before" && view.saleStartsAt && (
        <p>
          The sale starts at <time dateTime={view.saleStartsAt}>{formatDate(view.saleStartsAt)}</time>.
        </p>
      )}
    </>
  );
}
