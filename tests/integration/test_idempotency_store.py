"""Idempotency records in a real Redis, one node and the 12-node Redis Cluster: a claim,
its duplicates, the stored response, a different body, an abandoned claim."""

from __future__ import annotations

from imagegen import redisconn
from imagegen.gateway import idempotency, keyspace

RESPONSE = idempotency.StoredResponse(
    status=202, headers={"location": "/api/v1/batches/b-1"}, body=b'{"name":"b-1"}'
)


async def test_one_claim_then_in_flight_then_the_stored_response(
    any_redis: redisconn.Client,
) -> None:
    store = idempotency.IdempotencyStore(redis=any_redis)
    claim = {"tenant": "acme", "key": "k-1", "fingerprint": "f-1"}
    assert await store.claim(**claim) == (idempotency.State.NEW, None)
    assert await store.claim(**claim) == (idempotency.State.IN_FLIGHT, None)
    await store.finish(**claim, response=RESPONSE)
    assert await store.claim(**claim) == (idempotency.State.REPLAY, RESPONSE)
    other_body = {**claim, "fingerprint": "f-2"}
    assert await store.claim(**other_body) == (idempotency.State.MISMATCH, None)


async def test_an_abandoned_claim_lets_a_retry_go_ahead_and_tenants_do_not_share_keys(
    any_redis: redisconn.Client,
) -> None:
    store = idempotency.IdempotencyStore(redis=any_redis)
    assert (await store.claim(tenant="acme", key="k", fingerprint="f"))[0] is idempotency.State.NEW
    assert (await store.claim(tenant="globex", key="k", fingerprint="g"))[0] is (
        idempotency.State.NEW
    )
    await store.abandon(tenant="acme", key="k")
    assert (await store.claim(tenant="acme", key="k", fingerprint="f"))[0] is idempotency.State.NEW
    # A claim is short-lived, so a gateway dying mid-request blocks duplicates only briefly.
    ttl = await any_redis.ttl(keyspace.idempotency("acme", "k"))
    assert 0 < ttl <= idempotency.CLAIM_SECONDS
