"""Domain errors of the write side. Each has a stable ``code`` that clients rely on."""

from rest_framework import status

from apps.core.exceptions import DomainError


class SeatsUnavailable(DomainError):
    code = "seats_unavailable"
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Some of the seats are not available."


class UnknownSeats(DomainError):
    code = "unknown_seats"
    default_detail = "Some of the seats do not exist in this event."


class DuplicateSeats(DomainError):
    code = "duplicate_seats"
    default_detail = "A seat is listed more than once."


class NoSeats(DomainError):
    code = "no_seats"
    default_detail = "No seats were given."


class HoldLimitExceeded(DomainError):
    code = "hold_limit_exceeded"
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "That is more seats than one buyer may hold for this event."


class AddressLimitExceeded(DomainError):
    code = "address_limit_exceeded"
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = (
        "Buyers from your network address already hold as many seats as one address may: "
        "confirm or release some first."
    )


class NotAdmitted(DomainError):
    code = "not_admitted"
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = (
        "This event has a waiting room: join it (POST /api/events/{id}/room) and wait for "
        "your turn; once admitted, your pass lets you hold and buy seats."
    )


class EventNotFound(DomainError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "No such event."


class SaleNotOpen(DomainError):
    code = "sale_not_open"
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This event is not on sale."


class SaleClosed(DomainError):
    code = "sale_closed"
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The sale of this event is closed."


class HoldNotFound(DomainError):
    code = "hold_not_found"
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "No such hold."


class HoldExpired(DomainError):
    code = "hold_expired"
    status_code = status.HTTP_410_GONE
    default_detail = "The hold has expired; its seats may have been taken."


class NotHoldOwner(DomainError):
    code = "not_hold_owner"
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "Only the buyer who made this hold can change it."


class SeatsNotInHold(DomainError):
    code = "seats_not_in_hold"
    default_detail = "Some of the seats are not part of this hold."


class SeatsNotBlocked(DomainError):
    code = "seats_not_blocked"
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Some of the seats are not blocked."


class ReservationNotFound(DomainError):
    code = "reservation_not_found"
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "No such reservation."


class ReservationCancelled(DomainError):
    code = "reservation_cancelled"
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The reservation is already cancelled."


# The scripts answer with a code; this maps it back to the exception to raise.
BY_CODE: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        SeatsUnavailable, UnknownSeats, DuplicateSeats, NoSeats, HoldLimitExceeded,
        AddressLimitExceeded, NotAdmitted,
        SaleNotOpen, SaleClosed, HoldNotFound, HoldExpired, NotHoldOwner, SeatsNotInHold,
        SeatsNotBlocked, ReservationNotFound, ReservationCancelled,
    )
}  # fmt: skip
