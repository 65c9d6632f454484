"""Reads of the waiting room (docs/architecture.md, Waiting room)."""

import json
from collections.abc import Mapping
from typing import Any

from apps.waitingroom import store
from apps.waitingroom.passes import pass_valid
from apps.waitingroom.services import room_frame, room_view


def room_status(*, event_id: int, buyer: str | None) -> dict:
    """The room as ``buyer`` sees it (without a place if they have none, or no buyer)."""
    args: dict[str, Any] = {"buyer": buyer} if buyer else {}
    return room_view(event_id, store.run("status", event_id, **args))


def room_figures(*, event_id: int) -> dict:
    """Staff's figures: state, waiting, admitted, active, dropped, rate, paused."""
    return store.run("status", event_id)["room"]


def room_socket_frame(
    *, event_id: int, buyer: str | None, cookies: Mapping[str, str], waiting: bool = False
) -> str | None:
    """For a socket opening the event's live map: None if it may watch the map (no room
    on, or a valid pass), else the first ``room`` frame of a buyer who waits. For a socket
    that is ``waiting`` already: the buyer's ``room`` frame, whatever the room's state
    (``off`` tells the client to open the map)."""
    if not waiting and pass_valid(cookies, event_id=event_id, buyer=buyer):
        return None
    args: dict[str, Any] = {"buyer": buyer} if buyer else {}
    result = store.run("status", event_id, **args)
    if not waiting and result["room"]["state"] == "off":
        return None
    return room_frame(event_id, result["room"], result.get("you") or {})


def room_frame_place_pending(frame: str) -> bool:
    """Whether a buyer's own ``room`` frame shows a place without its ticket yet (an early
    arrival before the start's draw)."""
    place = json.loads(frame).get("place")
    return place is not None and place["ticket"] is None


def room_frame_drawn(frame: str) -> bool:
    """Whether a ``room`` frame says the start's draw has given out the tickets."""
    return bool(json.loads(frame)["drawn"])
