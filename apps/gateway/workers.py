"""The gateway's Kafka workers, where ``manage.py consume_kafka`` looks for every app's
(apps/core/workers.py): the bridge, ``gateway``, which turns seat and stats envelopes into
live frames. Its code is bridge.py, the name the fan-out is known by (docs/architecture.md,
Gateway).
"""

from apps.gateway.bridge import GatewayBridge

__all__ = ["GatewayBridge"]
