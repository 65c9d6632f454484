import { useCallback, useEffect, useLayoutEffect, useMemo, useSyncExternalStore } from "react";
import type { FeedUpdate } from "../live/liveFeed";
import type { Venue } from "../map/venue";
import { HoldClient, type HoldRequest } from "./holdClient";

// React's side of the buyer's hold: one HoldClient per event (holdClient.ts has the logic
// and its tests), its expiry timer running while the page is mounted.

/**
 * `onNotAdmitted`: a command answered 403 not_admitted (the waiting room's pass ran out):
 * the buyer goes back to the waiting room.
 */
export function useHold(eventId: number, venue: Venue, onNotAdmitted?: () => void) {
  const client = useMemo(() => new HoldClient({ eventId, storage: window.sessionStorage }), [eventId]);
  useLayoutEffect(() => {
    client.onNotAdmitted = onNotAdmitted;
  }, [client, onNotAdmitted]);
  useEffect(() => {
    client.start();
    return () => client.stop();
  }, [client]);
  const { hold, busy, notices } = useSyncExternalStore(client.subscribe, client.view);

  const commands = useMemo(
    () => ({
      create: (request: HoldRequest) => client.create(request),
      extend: () => client.extend(),
      release: () => client.release(),
      confirm: () => client.confirm(),
      dismiss: () => client.dismiss(),
    }),
    [client],
  );
  const onFeedUpdate = useCallback((update: FeedUpdate) => client.feedUpdate(update, venue), [client, venue]);

  return { hold, busy, notices, myToken: client.myToken, onFeedUpdate, ...commands };
}
