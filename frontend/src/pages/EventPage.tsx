import { useCallback, useEffect, useMemo, useState } from "react";
import { ApiError, apiGet, errorText } from "../api";
import { BestAvailable } from "../components/BestAvailable";
import { ConnectionBadge } from "../components/ConnectionBadge";
import { HoldPanel } from "../components/HoldPanel";
import { Legend } from "../components/Legend";
import { Notices } from "../components/Notices";
import { SectionStats } from "../components/SectionStats";
import { SelectionPanel } from "../components/SelectionPanel";
import { useHold } from "../hold/useHold";
import { LiveFeed } from "../live/liveFeed";
import { socketUrl, type ConnectionStatus } from "../live/socket";
import { SeatCanvas } from "../map/SeatCanvas";
import { venueFromLayout, type Venue } from "../map/venue";
import { seatView, type SeatState } from "../protocol/seatState";
import { WaitingRoomPage } from "../room/WaitingRoomPage";
import { formatDate, priceFormat } from "../format";
import { describeSeat, seatLabelWithKey, seatPrice } from "../seatDescription";
import type { EventInfo, Layout } from "../types";

export function EventPage({ eventId }: { eventId: number }) {
  const [data, setData] = useState<{ event: EventInfo; layout: Layout } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    Promise.all([
      apiGet<EventInfo>(`/api/events/${eventId}`, abort.signal),
      apiGet<Layout>(`/api/events/${eventId}/layout`, abort.signal),
    ])
      .then(([event, layout]) => setData({ event, layout }))
      .catch((e: unknown) => {
        if (abort.signal.aborted) return;
        setError(e instanceof ApiError && e.status === 404 ? "This event does not exist." : errorText(e));
      });
    return () => abort.abort();
  }, [eventId]);
  const venue = useMemo(() => data && venueFromLayout(data.layout), [data]);
  // The waiting room comes first (it lets the buyer straight through if the event has none
  // on); a command refused for want of a pass, or the map's socket turned into a waiting
  // room's, sends the buyer back to it for a new turn.
  const [admitted, setAdmitted] = useState(false);
  const admit = useCallback(() => setAdmitted(true), []);
  const readmit = useCallback(() => setAdmitted(false), []);

  if (!admitted && !error) {
    return <WaitingRoomPage eventId={eventId} event={data?.event ?? null} onAdmitted={admit} />;
  }
  if (error || !data || !venue) {
    return (
      <main className="page page--narrow">
        <a href="/">← All events</a>
        {error ? <p role="alert">{error}</p> : <p>Loading the seat map…</p>}
      </main>
    );
  }
  return <SeatMapPage event={data.event} venue={venue} onNotAdmitted={readmit} />;
}

function without<T>(set: ReadonlySet<T>, items: Iterable<T>): Set<T> {
  const next = new Set(set);
  for (const item of items) next.delete(item);
  return next;
}

/** Why the buyer cannot hold seats right now, or null when they can. */
function holdBlockedReason(status: ConnectionStatus, state: SeatState | null, holding: boolean): string | null {
  if (status.kind === "closed") return status.reason;
  if (state?.saleStatus === "closed") return "The sale is closed.";
  if (!state) return "Waiting for the live seat map…";
  if (holding) return "Confirm or release your current hold before holding more seats.";
  return null;
}

function SeatMapPage({
  event,
  venue,
  onNotAdmitted,
}: {
  event: EventInfo;
  venue: Venue;
  onNotAdmitted: () => void;
}) {
  const holds = useHold(event.id, venue, onNotAdmitted);
  const { hold, myToken, onFeedUpdate } = holds;
  const [live, setLive] = useState<{ state: SeatState | null; status: ConnectionStatus }>({
    state: null,
    status: { kind: "connecting" },
  });
  const [selected, setSelected] = useState<ReadonlySet<number>>(() => new Set());
  const [focused, setFocused] = useState(-1);
  const [hovered, setHovered] = useState(-1);
  const [note, setNote] = useState<string | null>(null);
  const formatPrice = useMemo(() => priceFormat(venue.currency), [venue]);
  const max = event.max_seats_per_hold;
  const { state, status } = live;

  useEffect(() => {
    const feed = new LiveFeed({
      venue,
      url: socketUrl(window.location, event.id),
      myToken,
      onUpdate: (update) => {
        setLive({ state: update.state, status: update.status });
        onFeedUpdate(update);
      },
      onRoom: onNotAdmitted,
    });
    feed.start();
    return () => feed.stop();
  }, [venue, event.id, myToken, onFeedUpdate, onNotAdmitted]);

  const holdSeats = useMemo(() => {
    if (!hold) return null;
    const seats = new Set<number>();
    for (const key of hold.seats) {
      const seat = venue.indexByKey.get(key);
      if (seat !== undefined) seats.add(seat);
    }
    return { seats, seq: hold.seq };
  }, [hold, venue]);

  const viewOf = (seat: number) => (state ? seatView(state, seat, holdSeats, selected.has(seat)) : null);
  const describe = (seat: number) => {
    const view = viewOf(seat);
    return seat >= 0 && view ? describeSeat(venue, seat, view, formatPrice) : "";
  };

  const holdBlocked = holdBlockedReason(status, state, hold !== null);

  const activateSeat = (seat: number) => {
    setNote(null);
    if (selected.has(seat)) {
      setSelected(without(selected, [seat]));
      return;
    }
    if (viewOf(seat) !== "free") return;
    if (selected.size >= max) {
      setNote(`You can hold at most ${max} seats at once.`);
      return;
    }
    setSelected(new Set(selected).add(seat));
  };

  const holdSelection = async () => {
    const seats = [...selected];
    const lost = await holds.create({ seats: seats.map((seat) => venue.keys[seat]) });
    if (lost === null) return; // failed for another reason: keep the selection as it is
    // Held: the seats move to the hold. Conflict: only the lost ones leave the selection.
    const gone = lost.length === 0 ? seats : lost.flatMap((key) => venue.indexByKey.get(key) ?? []);
    setSelected((current) => without(current, gone));
  };

  const findBest = async (count: number, section: number | undefined) => {
    await holds.create({ best: section === undefined ? { count } : { count, section } });
  };

  const selectedList = [...selected];
  const unavailable = new Set(state ? selectedList.filter((seat) => viewOf(seat) !== "selected") : []);
  const holdTotal = (hold?.seats ?? []).reduce((sum, key) => {
    const seat = venue.indexByKey.get(key);
    return sum + (seat === undefined ? 0 : seatPrice(venue, seat));
  }, 0);
  const label = (key: string) => seatLabelWithKey(venue, key);
  const shown = hovered >= 0 ? hovered : focused;

  return (
    <div className="event">
      <header className="event__header">
        <div>
          <a href="/" className="back">
            ← All events
          </a>
          <h1>{event.name}</h1>
          <p className="muted">
            {venue.name || event.venue} · <time dateTime={event.starts_at}>{formatDate(event.starts_at)}</time>
          </p>
        </div>
        <ConnectionBadge status={status} />
      </header>

      <main className="event__body">
        <div className={status.kind === "live" ? "event__map" : "event__map event__map--stale"}>
          {status.kind === "reconnecting" && (
            <p className="map-stale" role="status">
              Connection lost: seat colours may be out of date until it is back.
            </p>
          )}
          <SeatCanvas
            venue={venue}
            state={state}
            selected={selected}
            hold={holdSeats}
            focused={focused}
            onFocusSeat={(seat) => {
              setFocused(seat);
              setHovered(-1); // the info line follows the cursor that moved last
            }}
            onActivateSeat={activateSeat}
            onHoverSeat={setHovered}
          />
          <p className="seat-info" aria-hidden="true">
            {shown >= 0 && state ? describe(shown) : "Click or tap a free seat to select it. Drag to move, wheel or pinch to zoom."}
          </p>
          <p id="seat-focus" className="sr-only" data-testid="seat-focus" aria-live="polite">
            {describe(focused)}
          </p>
        </div>

        <aside className="event__side" aria-label="Booking">
          {status.kind === "closed" && (
            <p className="banner" role="alert">
              {status.reason}: seats cannot be booked right now.
            </p>
          )}
          <Notices
            notices={holds.notices}
            label={label}
            onDismiss={holds.dismiss}
          />
          {hold && (
            <HoldPanel
              hold={hold}
              label={label}
              total={formatPrice(holdTotal)}
              busy={holds.busy}
              onExtend={holds.extend}
              onRelease={holds.release}
              onConfirm={holds.confirm}
            />
          )}
          <SelectionPanel
            venue={venue}
            selected={selectedList}
            unavailable={unavailable}
            max={max}
            formatPrice={formatPrice}
            holdBlocked={holdBlocked}
            busy={holds.busy === "hold"}
            note={note}
            onRemove={(seat) => setSelected(without(selected, [seat]))}
            onClear={() => setSelected(new Set())}
            onHold={holdSelection}
          />
          <BestAvailable
            venue={venue}
            max={max}
            holdBlocked={holdBlocked}
            busy={holds.busy === "hold"}
            onFind={findBest}
          />
          <SectionStats stats={state?.stats ?? null} />
          <Legend venue={venue} formatPrice={formatPrice} />
        </aside>
      </main>
    </div>
  );
}
