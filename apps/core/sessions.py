"""The session engine (SESSION_ENGINE): Django's cache sessions, with short-lived
anonymous ones.

An anonymous buyer's session is only what ties them to their holds; anyone can make one,
so Django's two weeks (SESSION_COOKIE_AGE) would let a script fill the cache with them.
Here a session without a logged-in user expires after SEATS_ANONYMOUS_SESSION_TTL seconds
without use, and a logged-in user's keeps Django's default.

"Without use" is cheap to follow: Django writes a session only when it changed (or on
every request with SESSION_SAVE_EVERY_REQUEST, a Redis write per request of an on-sale).
Each save stamps the time; a request that reads an anonymous session saved more than
half the TTL ago marks it changed, so the session middleware writes it back with a fresh
TTL (and cookie). A buyer thus pays one extra write every TTL/2 at most, and a session
expires between TTL/2 and TTL after its last use. Loading costs nothing extra: the stamp
is in the data that is read anyway.

A new session costs one round trip, not Django's four: its key is not first looked up
(the create's add refuses a key that exists, and Django then tries another), and the
middleware's save at the end of the request writes nothing when the data is still what
the create wrote (Django would read the key back, then write the same data again). Every
new buyer pays this: in an on-sale that is every first command and every waiting-room
join (docs/architecture.md, "Sessions and Redis memory").
"""

import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django.utils.crypto import get_random_string

# Seconds since the epoch of the session's last save.
SAVED_AT = "_seats_saved_at"


class SessionStore(CacheSessionStore):
    def get_session_cookie_age(self) -> int:
        """The TTL when the session has no explicit expiry (set_expiry): short for an
        anonymous buyer, Django's for a logged-in user. Also the cookie's max-age."""
        if SESSION_KEY in self._session:  # type: ignore[attr-defined]
            return settings.SESSION_COOKIE_AGE
        return settings.SEATS_ANONYMOUS_SESSION_TTL

    def _get_new_session_key(self) -> str:
        # No exists() round trip first: save(must_create=True) adds the key only if it is
        # new, and create() tries another on the CreateError if it was not.
        return get_random_string(32, VALID_KEY_CHARS)

    def create(self) -> None:
        super().create()
        self._created_as: dict | None = dict(self._session)  # type: ignore[attr-defined]

    def save(self, must_create: bool = False) -> None:
        created_as = getattr(self, "_created_as", None)
        if not must_create and created_as is not None:
            self._created_as = None
            if self._session == created_as:  # type: ignore[attr-defined]
                return  # the cache holds this already: create() wrote it this request
        if self.session_key is not None:  # else create() picks a key and comes back here
            # Into the data as it is written, without marking the session modified.
            self._get_session(no_load=must_create)[SAVED_AT] = int(time.time())  # type: ignore[attr-defined]
        super().save(must_create)

    def load(self) -> dict:
        return self._refresh_if_due(super().load())

    async def aload(self) -> dict:
        return self._refresh_if_due(await super().aload())

    def _refresh_if_due(self, data: dict) -> dict:
        # A session saved before this engine has no stamp: it is refreshed (and so cut to
        # the anonymous TTL) on its first use.
        if data and SESSION_KEY not in data and "_session_expiry" not in data:
            age = time.time() - data.get(SAVED_AT, 0)
            if age >= settings.SEATS_ANONYMOUS_SESSION_TTL / 2:
                self.modified = True
        return data
