"""Domain errors of the waiting room. Each has a stable ``code`` that clients rely on."""

from rest_framework import status
from rest_framework.exceptions import Throttled

from apps.core.exceptions import DomainError


class NotInQueue(DomainError):
    code = "not_in_queue"
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "You have no place in this event's waiting room: join it first."


class NotYourTurn(DomainError):
    code = "not_your_turn"
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Your turn has not come yet: keep the page open, it moves on by itself."


class PlaceExpired(DomainError):
    code = "place_expired"
    status_code = status.HTTP_410_GONE
    default_detail = (
        "Your turn passed, or your time to buy ran out: join the waiting room again for a new "
        "place."
    )


class TooManyPlaces(Throttled):
    """A 429 with its Retry-After, as the other per-address limit's (apps/core/addresses.py)."""

    default_code = "too_many_places"
    default_detail = "Too many new places in this waiting room from your network address."


BY_CODE: dict[str, type[DomainError]] = {
    cls.code: cls for cls in (NotInQueue, NotYourTurn, PlaceExpired)
}
