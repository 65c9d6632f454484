"""What a command does with an odd request, by hand (the fuzzer's cases are random ones:
test_api_fuzz.py): deep JSON, odd Unicode in tokens and seat keys, bodies over the limits,
and bodies without a Content-Length (chunked), through the test client and through the
real servers (granian, daphne, and nginx in front). Whatever comes in, the answer is a
JSON 4xx that changed nothing, or the command exactly as sent: never a 500, and never
"every seat" for a body that went unread.

The conftest's `sale`: seats A-1-1, A-1-2, A-1-3 and V-1-1 on sale.
"""

import io
import json
import socket
from urllib.parse import quote

import pytest
from django.test import Client

from apps.core import http
from apps.core.http import MAX_COMMAND_BODY, MAX_JSON_DEPTH, json_too_deep
from apps.reservations import services
from apps.reservations.errors import HoldNotFound
from apps.reservations.redis.inventory import inventory_snapshot

TOKEN_CHARS = 24  # secrets.token_urlsafe(18)


def state(event) -> tuple:
    snap = inventory_snapshot(event_id=event.pk)
    return snap.seq, snap.state, snap.holds


def post(client: Client, url: str, body: str | bytes | None = None, **extra):
    return client.post(url, data=body or "", content_type="application/json", **extra)


@pytest.fixture
def buyer() -> Client:
    client = Client()
    client.session  # noqa: B018 - a session (and its cookie) of its own
    return client


@pytest.fixture
def held(sale, buyer) -> str:
    """A hold of A-1-1 and A-1-2 by `buyer`: its token."""
    response = post(buyer, f"/api/events/{sale.pk}/holds", '{"seats": ["A-1-1", "A-1-2"]}')
    assert response.status_code == 201, response.content
    return response.json()["hold_token"]


def assert_refused(response, status: int, code: str) -> None:
    assert response["Content-Type"] == "application/json", response.content[:200]
    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert set(response.json()) >= {"code", "detail"}


# --- nesting ---------------------------------------------------------------------------

DEEP_SEATS = '{"seats":' + "[" * 5000 + "]" * 5000 + "}"
DEEP_BEST = '{"best": ' * 1500 + '{"count": 1}' + "}" * 1500


@pytest.mark.parametrize("body", [DEEP_SEATS, DEEP_BEST], ids=["5000 arrays", "1500 objects"])
def test_deep_json_is_a_parse_error_on_hold_and_release(sale, buyer, held, body):
    assert len(body.encode()) < MAX_COMMAND_BODY
    before = state(sale)

    on_hold = post(buyer, f"/api/events/{sale.pk}/holds", body)
    on_release = post(buyer, f"/api/holds/{held}/release", body)

    assert_refused(on_hold, 400, "parse_error")
    assert_refused(on_release, 400, "parse_error")
    assert str(MAX_JSON_DEPTH) in on_hold.json()["detail"]
    assert state(sale) == before


def test_a_recursion_error_is_a_parse_error_too(sale, buyer, monkeypatch):
    # Should the depth check ever let one through, the parser's own recursion is caught.
    monkeypatch.setattr(http, "json_too_deep", lambda text: False)
    response = post(buyer, f"/api/events/{sale.pk}/holds", DEEP_SEATS)
    assert_refused(response, 400, "parse_error")
    assert state(sale) == (0, {}, {})


def test_json_depth_is_counted_outside_strings():
    assert not json_too_deep('{"best": {"count": 2}}')
    assert not json_too_deep(json.dumps({"seats": ["[[[[[[[[", '"{{{{{{{{\\"']}))
    assert not json_too_deep("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    assert json_too_deep("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    assert json_too_deep('{"a": "\\"", "b": [[[[[[1]]]]]]}')  # an escaped quote ends nothing


def test_commands_nest_within_the_depth(sale, buyer):
    response = post(buyer, f"/api/events/{sale.pk}/holds", '{"best": {"count": 1}}')
    assert response.status_code == 201
    brackets_in_a_key = post(buyer, f"/api/events/{sale.pk}/holds", '{"seats": ["[[[[[[[["]}')
    assert_refused(brackets_in_a_key, 400, "unknown_seats")


# --- Unicode ---------------------------------------------------------------------------


def odd_tokens(event_id: int, real: str) -> list[str]:
    random_part = real.partition(".")[2]
    return [
        "².abc",  # str.isdigit() says yes, int() says no
        f"².{random_part}",
        f"{chr(0xFF11)}.{random_part}",  # full-width 1
        f"{chr(0x0661)}.{random_part}",  # Arabic-Indic 1
        f"{event_id}{chr(0xFF10)}.{random_part}",
        "9" * 5000 + f".{random_part}",  # more digits than int() takes
        f"{event_id}.{'é' * TOKEN_CHARS}",
        f"{event_id}.{random_part[:-1]}²",
        f"{event_id}.{random_part}\u200b",
        f"{event_id}.{random_part[:-1]}",
        f"{event_id}.{random_part}x",
        f"{event_id}.{random_part[:-1]}\x00",
        f" {real}",
    ]


@pytest.mark.parametrize("command", ["extend", "release", "reserve"])
def test_odd_unicode_tokens_are_404_hold_not_found(sale, buyer, held, command):
    before = state(sale)
    for token in odd_tokens(sale.pk, held):
        response = post(buyer, f"/api/holds/{quote(token)}/{command}", "{}")
        assert response.status_code == 404, (token, response.content[:200])
        assert response.json()["code"] == "hold_not_found", token
    assert state(sale) == before


def test_the_issue_s_token_is_404(sale, buyer):
    for command in ("reserve", "release", "extend"):
        assert_refused(post(buyer, f"/api/holds/%C2%B2.abc/{command}", "{}"), 404, "hold_not_found")


def test_only_the_shape_hold_create_makes_is_a_token(held):
    assert services.hold_token_event_id(held) == int(held.partition(".")[0])
    for token in ("1.abc", "1." + "a" * 25, "²." + "a" * TOKEN_CHARS, "1.." + "a" * 23):
        with pytest.raises(HoldNotFound):
            services.hold_token_event_id(token)


ODD_SEAT_KEYS = [
    "\uff21-1-1",  # full-width A
    "A-1-1\x00",
    "A\u200b-1-1",  # zero-width space
    "A-1-\u0661",  # Arabic-Indic 1
    "A-1-1\u0301",  # combining accent
    "\u202eA-1-1",  # right-to-left override
    "\U0001f600" * 10,
    "\ufeffA-1-1",
]


@pytest.mark.parametrize(
    "key", ODD_SEAT_KEYS, ids=lambda key: key.encode("unicode_escape").decode()
)
def test_odd_unicode_seat_keys_are_unknown(sale, buyer, held, key):
    before = state(sale)
    for url in (f"/api/events/{sale.pk}/holds", f"/api/holds/{held}/release"):
        response = post(buyer, url, json.dumps({"seats": [key]}))
        assert response.status_code == 400, (url, response.content)
        # NUL: DRF's CharField refuses it ("invalid"); the others are no seat of the hall.
        assert response.json()["code"] in {"unknown_seats", "seats_not_in_hold", "invalid"}
    assert state(sale) == before


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud800\\u0041"])
def test_lone_surrogates_are_refused(sale, buyer, held, escape):
    # Valid JSON escapes, but no Unicode text: Redis could not encode them. DRF's CharField
    # refuses surrogates before they get there.
    before = state(sale)
    body = f'{{"seats": ["A-1-1{escape}"]}}'
    assert_refused(post(buyer, f"/api/events/{sale.pk}/holds", body), 400, "invalid")
    assert_refused(post(buyer, f"/api/holds/{held}/release", body), 400, "invalid")
    assert state(sale) == before


def test_a_body_that_is_not_utf8_is_a_parse_error(sale, buyer):
    response = post(buyer, f"/api/events/{sale.pk}/holds", b'{"seats": ["A-1-1\xff"]}')
    assert_refused(response, 400, "parse_error")
    assert state(sale) == (0, {}, {})


# --- sizes -----------------------------------------------------------------------------


def padded(size: int) -> str:
    """A hold body of exactly ``size`` bytes that would hold A-1-3, but for its size."""
    head = '{"seats": ["A-1-3"], "padding": "'
    return head + "x" * (size - len(head) - 2) + '"}'


@pytest.mark.parametrize("size", [MAX_COMMAND_BODY + 1, 256 * 1024 + 1], ids=["16K+1", "256K+1"])
@pytest.mark.parametrize("key", [None, "k-1"], ids=["no key", "Idempotency-Key"])
def test_an_oversized_body_is_413_in_json(sale, buyer, held, size, key):
    before = state(sale)
    headers = {"Idempotency-Key": key} if key else {}
    body = padded(size)
    assert len(body) == size

    for url in (f"/api/events/{sale.pk}/holds", f"/api/holds/{held}/release"):
        response = post(buyer, url, body, headers=headers)
        assert_refused(response, 413, "too_large")
    assert state(sale) == before


def test_a_body_of_exactly_the_limit_is_read(sale, buyer):
    response = post(buyer, f"/api/events/{sale.pk}/holds", padded(MAX_COMMAND_BODY))
    assert response.status_code == 201


@pytest.fixture
def browser() -> Client:
    """A buyer whose cookie requests are CSRF-checked, as a browser's are."""
    client = Client(enforce_csrf_checks=True)
    client.session  # noqa: B018
    client.cookies["csrftoken"] = "x" * 32  # the check reads the form only past the cookie
    return client


def test_an_oversized_form_on_any_api_route_is_413_in_json(browser):
    # Was Django's HTML page: the CSRF check read the form, over DATA_UPLOAD_MAX_MEMORY_SIZE.
    form = "a=" + "x" * (256 * 1024)
    response = browser.post("/api/events/", form, content_type="application/x-www-form-urlencoded")
    assert_refused(response, 413, "too_large")


def test_too_many_form_fields_on_an_api_route_is_a_json_400(browser):
    # The CSRF check reads the form and Django refuses it (TooManyFieldsSent): an HTML page
    # but for handler400.
    form = "&".join(["a=1"] * 2000)
    response = browser.post("/api/events/", form, content_type="application/x-www-form-urlencoded")
    assert_refused(response, 400, "bad_request")


def test_a_url_no_api_route_matches_is_a_json_404(buyer):
    assert_refused(buyer.get("/api/stats/event/1/section/-1"), 404, "not_found")
    assert buyer.get("/no-such-page")["Content-Type"].startswith("text/html")


def test_a_content_length_that_is_not_a_length_is_a_parse_error(sale, buyer, held):
    response = post(buyer, f"/api/holds/{held}/release", "{}", CONTENT_LENGTH="two")
    assert_refused(response, 400, "parse_error")


# --- the release body ------------------------------------------------------------------


@pytest.mark.parametrize("body", ["", " ", "null", "[]", '"all"'])
def test_a_release_without_an_object_releases_nothing(sale, buyer, held, body):
    before = state(sale)
    response = post(buyer, f"/api/holds/{held}/release", body)
    assert response.status_code == 400
    assert response.json()["code"] in {"parse_error", "invalid"}
    assert state(sale) == before


def test_an_empty_object_releases_every_seat(sale, buyer, held):
    response = post(buyer, f"/api/holds/{held}/release", "{}")
    assert response.json()["seats"] == ["A-1-1", "A-1-2"]
    assert state(sale)[1] == {}


# --- framing, through the test client (a WSGI server that does or does not promise that
# a body without Content-Length ends) -------------------------------------------------


def unframed(body: bytes, *, ends: bool) -> dict:
    """The WSGI environ of a chunked body, as the server hands it on (de-chunked)."""
    environ = {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"}
    environ["wsgi.input"] = io.BytesIO(body)
    if ends:
        environ["wsgi.input_terminated"] = True
    return environ


def test_a_chunked_body_is_read_whole_where_the_server_says_it_ends(sale, buyer, held):
    body = b'{"seats": ["A-1-2"]}'
    response = post(buyer, f"/api/holds/{held}/release", body, **unframed(body, ends=True))
    assert (response.status_code, response.json()["seats"]) == (200, ["A-1-2"])
    assert state(sale)[1] == {"A-1-1": f"h:{held}"}


def test_a_chunked_body_is_411_where_the_server_cannot_say(sale, buyer, held):
    before = state(sale)
    body = b'{"seats": ["A-1-2"]}'
    response = post(buyer, f"/api/holds/{held}/release", body, **unframed(body, ends=False))
    assert_refused(response, 411, "length_required")
    assert state(sale) == before


def test_an_oversized_chunked_body_is_413(sale, buyer, held):
    before = state(sale)
    body = padded(MAX_COMMAND_BODY + 1).encode()
    response = post(buyer, f"/api/holds/{held}/release", body, **unframed(body, ends=True))
    assert_refused(response, 413, "too_large")
    assert state(sale) == before


def test_an_empty_chunked_body_is_an_empty_body(sale, buyer, held):
    before = state(sale)
    response = post(buyer, f"/api/holds/{held}/release", b"", **unframed(b"", ends=True))
    assert_refused(response, 400, "parse_error")
    assert state(sale) == before


# --- framing, through the real servers --------------------------------------------------


def raw_http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection, as written; the status, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return int(status_line.split()[1]), headers, body


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def chunked(body: bytes, size: int = 7) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def command(path: str, token: str, body: bytes, *, framing: str) -> bytes:
    headers = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        "Accept: application/json",
        f"Authorization: Token {token}",
        "Connection: close",
    ]
    if framing == "length":
        headers.append(f"Content-Length: {len(body)}")
    elif framing == "chunked":
        headers.append("Transfer-Encoding: chunked")
        body = chunked(body)
    elif framing == "chunked+length":  # both: RFC 9112 says chunked wins, or refuse
        headers += ["Transfer-Encoding: chunked", "Content-Length: 3"]
        body = chunked(body)
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


@pytest.mark.django_db(transaction=True)  # the servers read the committed rows
def test_framings_against_the_real_servers(sale, django_user_model, tmp_path):
    """nginx buffers a chunked body and hands it on with a Content-Length; granian (web)
    and daphne (ws, which serves HTTP too) get it chunked, directly on their ports."""
    from rest_framework.authtoken.models import Token

    from tests.stack import Stack

    token = Token.objects.create(user=django_user_model.objects.create_user("framer")).key
    holds, releases = f"/api/events/{sale.pk}/holds", "/api/holds/{}/release"

    with Stack(tmp_path / "stack.log", processes=["proxy", "web", "ws"]) as stack:
        servers = {"nginx": stack.port, "granian": stack.http_port, "daphne": stack.ws_port}
        for server, port in servers.items():
            for framing in ("chunked", "chunked+length"):
                case = f"{server}, {framing}"
                status, _, body = raw_http(
                    port, command(holds, token, b'{"seats": ["A-1-1", "A-1-2"]}', framing="length")
                )
                assert status == 201, (case, body)
                hold = json.loads(body)["hold_token"]
                before = state(sale)

                status, headers, body = raw_http(
                    port,
                    command(releases.format(hold), token, b'{"seats": ["A-1-2"]}', framing=framing),
                )

                if status == 200:  # read whole: exactly the seat asked for
                    assert json.loads(body)["seats"] == ["A-1-2"], (case, body)
                    assert state(sale)[1] == {"A-1-1": f"h:{hold}"}, case
                else:  # refused (nginx will not take both headers): nothing changed
                    assert 400 <= status < 500, (case, status, body)
                    assert state(sale) == before, case
                status, _, body = raw_http(
                    port, command(releases.format(hold), token, b"{}", framing="length")
                )
                assert status == 200, (case, body)

            for framing, size in [("chunked", MAX_COMMAND_BODY + 1), ("length", 256 * 1024 + 1)]:
                case = f"{server}, {framing}, {size} bytes"
                status, headers, body = raw_http(
                    port, command(holds, token, padded(size).encode(), framing=framing)
                )
                assert status == 413, (case, body[:300])
                assert headers["content-type"] == "application/json", (case, body[:300])
                assert json.loads(body)["code"] == "too_large", case
        assert state(sale)[1] == {}
