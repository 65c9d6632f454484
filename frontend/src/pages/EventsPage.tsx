import { useEffect, useState } from "react";
import { apiGet, errorText } from "../api";
import { formatDate } from "../format";
import type { EventInfo } from "../types";

export function EventsPage() {
  const [events, setEvents] = useState<EventInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    apiGet<EventInfo[] | { results: EventInfo[] }>("/api/events/", abort.signal)
      .then((body) => setEvents(Array.isArray(body) ? body : body.results))
      .catch((e: unknown) => {
        if (!abort.signal.aborted) setError(errorText(e));
      });
    return () => abort.abort();
  }, []);

  return (
    <main className="page page--narrow">
      <h1>Events</h1>
      {error && <p role="alert">{error}</p>}
      {!events && !error && <p>Loading…</p>}
      {events?.length === 0 && <p>No events on sale right now.</p>}
      {events && events.length > 0 && (
        <ul className="events">
          {events.map((event) => (
            <li key={event.id}>
              <a href={`/events/${event.id}/`}>
                <strong>{event.name}</strong>
              </a>
              <span className="muted">
                {event.venue} · <time dateTime={event.starts_at}>{formatDate(event.starts_at)}</time>
              </span>
              <span className={`badge badge--${event.sale_status}`}>
                {event.sale_status === "on_sale" ? "On sale" : "Sale closed"}
              </span>
            </li>
          ))}
        </ul>
      )}
    </main>
  );
}
