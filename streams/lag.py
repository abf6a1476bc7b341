"""Consumer lag, the one way for every group of the worker: asked of the broker.

The lag of a partition is its log end offset minus its group's committed offset
(from the log's first offset when the group has never committed there), for the
partitions a worker has assigned now.  Both the broker's answers come from public
clients: the group's committed offsets from `AIOKafkaAdminClient`, the log's ends
from a group-less `AIOKafkaConsumer`.  Neither faust's consumer nor the batch
consumer is asked (faust keeps what it committed only in private state).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kernel.kafka import make_admin, make_consumer
from kernel.settings import Settings

Lag = dict[tuple[str, int], int]


class LagReader(mode.Service):
    """The two clients the lag is read with; a service so they are closed on stop."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings
        self.admin: AIOKafkaAdminClient | None = None
        self.offsets: AIOKafkaConsumer | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        client_id = f"{self.settings.app_id}-lag"
        self.admin = make_admin(self.settings, client_id=client_id)
        self.offsets = make_consumer(self.settings, group_id=None, client_id=client_id)
        await self.admin.start()
        await self.offsets.start()

    async def on_stop(self) -> None:
        if self.offsets is not None:
            await self.offsets.stop()
        if self.admin is not None:
            await self.admin.close()

    async def lag(self, group: str, assigned: Iterable[tuple[str, int]]) -> Lag:
        """(topic, partition) -> records `group` has not committed, for `assigned`."""
        tps = [TopicPartition(topic, partition) for topic, partition in assigned]
        if not tps or self.admin is None or self.offsets is None:
            return {}
        committed = await self.admin.list_consumer_group_offsets(group, partitions=tps)
        # The log end offsets asked of the broker, not a fetcher's cached highwater:
        # faust stops fetching a partition whose buffer is full, just when its lag matters.
        ends = await self.offsets.end_offsets(tps)
        done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        unknown = [tp for tp in tps if tp not in done]
        if unknown:
            # Never committed: counts from the first offset (retention may have moved it past 0).
            done.update(await self.offsets.beginning_offsets(unknown))
        return {(tp.topic, tp.partition): max(0, ends[tp] - done[tp])
                for tp in tps if tp in ends and tp in done}
