"""The Redis Pub/Sub channel layer, with a bound on each socket's queue.

channels-redis' pub/sub layer (the fastest for broadcast: bench/gateway.py) keeps each
channel's pending messages in an unbounded asyncio.Queue, so one socket that stops reading
could grow the web process without limit. Here a full queue drops the newest message: what
was queued still arrives in order, the client sees a seq gap and asks for a snapshot
(docs/architecture.md, Gateway), which is cheaper than everything it missed.

Subclasses private parts of channels-redis 4.3 (pinned); revisit on upgrade.
"""

import asyncio
import logging

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, _wrap_close

log = logging.getLogger(__name__)


class _NewestDroppingQueue(asyncio.Queue):
    def put_nowait(self, item: object) -> None:
        if self.full():
            log.warning(
                "channel queue full (%d): dropped a message for a slow client", self.maxsize
            )
            return
        super().put_nowait(item)


class _BoundedLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: object, capacity: int = 200, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.capacity = capacity

    async def _subscribe_to_channel(self, channel: str) -> None:
        self.channels[channel] = _NewestDroppingQueue(maxsize=self.capacity)
        await self._get_shard(channel).subscribe(channel)


class BoundedRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer whose per-channel queues hold at most ``capacity`` messages."""

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _BoundedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
