"""Region.weight of the operator's configuration reaches dispatch: a region of weight 2
keeps a backlog that would send a batch of a weight-1 region elsewhere."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from imagegen import regions
from imagegen.api import operatorconfig
from imagegen.controller import dispatch
from imagegen.kube import clients
from imagegen.localcluster import operatorsetup, redis
from imagegen.queue import core, model

POOL = "dedicated-weighted"


@pytest.mark.parametrize(("weight", "chosen"), [(1, "eu-west"), (2, "us-east")])
def test_the_configured_weight_decides_whether_a_backlog_is_too_long(
    operator_setup: operatorsetup.OperatorSetup,
    region_redis: dict[str, redis.LocalRedis],
    weight: int,
    chosen: str,
) -> None:
    config = operatorconfig.OperatorConfig.model_validate(
        {
            "regions": [
                {
                    "name": name,
                    "kubeconfig": str(operator_setup.region_kubeconfigs[name]),
                    "redis": {"url": region_redis[name].url},
                    "weight": weight if name == "us-east" else 1,
                }
                for name in ("us-east", "eu-west")
            ]
        }
    )

    async def choose() -> str | None:
        management = clients.async_client(kubeconfig=operator_setup.kubeconfig)
        registry = await regions.connect(config=config, management=management)
        us_east = registry.get("us-east")
        assert us_east is not None
        queue = core.Queue(redis=us_east.redis, pool=POOL)
        backlog = model.BatchRef(
            uid=str(uuid.uuid4()), tenant="weighted", tier="standard", priority="normal"
        )
        items = [model.ItemSpec(id=f"i{n}", payload={}) for n in range(1500)]
        try:
            await queue.enqueue_batch(batch=backlog, items=items)
            loads = await dispatch.measure(
                registry=registry, names=["us-east", "eu-west"], pool=POOL
            )
            return dispatch.choose(preference=["us-east", "eu-west"], loads=loads)
        finally:
            await queue.cancel_batch(batch_uid=backlog.uid)
            await registry.close()
            await management.close()

    assert asyncio.run(choose()) == chosen
