"""Redis reply parsing: redis-py's pure-Python parser against hiredis, side by side.

    .venv/bin/python bench/redis_parser.py

The replies the platform reads: a small one (a session, a script's answer) and a big one
(an event's seat states, as the seat map and the snapshot read them). CPU time per call in
this process, on keys under this run's prefix (deleted at the end). Prints; asserts none.
"""

import time

from support import PREFIX, bench_env_setup

bench_env_setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from redis._parsers import _HiredisParser, _RESP2Parser  # noqa: E402

SMALL, BIG = f"{PREFIX}:parser:small", f"{PREFIX}:parser:big"


def cpu_us(call, times: int) -> float:  # type: ignore[no-untyped-def]
    began = time.process_time()
    for _ in range(times):
        call()
    return (time.process_time() - began) / times * 1e6


def main() -> None:
    setup = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    setup.set(SMALL, "x" * 200)
    setup.hset(BIG, mapping={f"S{i // 1000}-{i % 1000}": f"h:{i}" for i in range(50_000)})
    try:
        print("| parser | GET, 200 bytes | HGETALL, 50,000 fields |")
        print("| --- | --- | --- |")
        for name, parser in (("pure Python", _RESP2Parser), ("hiredis", _HiredisParser)):
            pool = redis.ConnectionPool.from_url(
                settings.REDIS_URL, parser_class=parser, decode_responses=True
            )
            client = redis.Redis(connection_pool=pool)
            small = cpu_us(lambda: client.get(SMALL), 5000)  # noqa: B023
            big = cpu_us(lambda: client.hgetall(BIG), 20)  # noqa: B023
            print(f"| {name} | {small:,.0f} µs | {big / 1000:,.1f} ms |")
            pool.disconnect()
    finally:
        setup.delete(SMALL, BIG)


if __name__ == "__main__":
    main()
