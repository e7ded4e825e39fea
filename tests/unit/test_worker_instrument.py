"""What a worker counts per delivery: redeliveries and lease expiries from the lease,
images, time and fallbacks from the provider chain's outcome."""

from imagegen.metrics import worker as metrics
from imagegen.queue import model
from imagegen.worker import instrument
from imagegen.worker.providers import base, chain

REGION = "instrument-test"


def lease(*, attempt: int, previous_error: str | None, tenant: str) -> model.Lease:
    return model.Lease(
        batch_uid="b", item_id="i", tenant=tenant, tier="standard", priority="normal",
        payload={}, attempt=attempt, worker_id="w", token="t", expires_at=0.0,
        previous_error=previous_error,
    )  # fmt: skip


def value(counter: object, **labels: str) -> float:
    sample: float = metrics.REGISTRY.get_sample_value(counter, labels)  # type: ignore[arg-type, assignment]
    return sample or 0.0


def test_a_first_delivery_counts_nothing_and_an_expired_one_counts_both() -> None:
    labels = {"tenant": "first", "region": REGION}
    instrument.leased(lease=lease(attempt=1, previous_error=None, tenant="first"), region=REGION)
    assert value("imagegen_queue_redeliveries_total", **labels) == 0
    instrument.leased(
        lease=lease(attempt=2, previous_error=model.EXPIRED, tenant="first"), region=REGION
    )
    instrument.leased(lease=lease(attempt=3, previous_error="busy", tenant="first"), region=REGION)
    assert value("imagegen_queue_redeliveries_total", **labels) == 2
    assert value("imagegen_queue_lease_expiries_total", **labels) == 1


def test_an_image_made_after_a_failure_counts_a_fallback_and_the_failure() -> None:
    outcome = chain.Outcome(
        image=base.GeneratedImage(
            data=b"x", content_type="image/png", provider="local", width=1, height=1
        ),
        provider="local",
        failures=(chain.Failure(provider="openai", message="busy", retryable=True),),
    )
    instrument.generated(
        lease=lease(attempt=1, previous_error=None, tenant="fallback"), region=REGION,
        outcome=outcome, seconds=0.2,
    )  # fmt: skip
    made = {"tenant": "fallback", "region": REGION, "provider": "local"}
    assert value("imagegen_worker_images_generated_total", **made) == 1
    assert value("imagegen_worker_provider_fallbacks_total", **made) == 1
    assert value("imagegen_worker_generation_duration_seconds_count", **made) == 1
    failed = {"tenant": "fallback", "region": REGION, "provider": "openai", "reason": "retryable"}
    assert value("imagegen_worker_provider_failures_total", **failed) == 1
