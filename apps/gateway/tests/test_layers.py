"""A socket that stops reading cannot make the pub/sub layer's queue grow without bound."""

import asyncio

from django.conf import settings

from apps.gateway.layers import BoundedRedisPubSubChannelLayer


def test_a_full_queue_keeps_the_oldest_messages_in_order_and_drops_the_rest():
    async def scenario() -> tuple[list[int], bool]:
        layer = BoundedRedisPubSubChannelLayer(
            hosts=[settings.REDIS_URL], prefix=f"{settings.SEATS_REDIS_PREFIX}:t", capacity=3
        )
        channel = await layer.new_channel()
        await layer.group_add("event-1", channel)
        for n in range(10):
            await layer.group_send("event-1", {"type": "envelope.forward", "n": n})
        await asyncio.sleep(0.5)  # pub/sub delivery to the subscriber task
        received = [(await layer.receive(channel))["n"] for _ in range(3)]
        try:
            await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            more = True
        except TimeoutError:
            more = False
        await layer.flush()
        return received, more

    received, more = asyncio.run(scenario())
    assert received == [0, 1, 2]
    assert more is False
