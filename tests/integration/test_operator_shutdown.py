"""An operator pod replaced while it resumes existing batches (SIGTERM mid-resume) exits 0
and leaves every batch as it was, for the next operator to resume."""

from __future__ import annotations

import pathlib

from imagegen import resources
from imagegen.localcluster import operatorsetup
from tests import builders
from tests.integration import operatorproc, waiting
from tests.integration.tenantworld import World, new_tenant, unique_name

BATCHES = 30


def phases(world: World, tenant: str) -> dict[str, str]:
    return {
        str(obj.metadata.name): str((obj.to_dict().get("status") or {}).get("phase"))
        for obj in world.kube.list(resources.ImageBatch, namespace=f"tenant-{tenant}")
        if obj.metadata is not None
    }


def test_sigterm_while_resuming_batches_exits_0_and_leaves_them_resumable(
    world: World, operator_setup: operatorsetup.OperatorSetup, tmp_path: pathlib.Path
) -> None:
    tenant = unique_name("resume")
    world.create(new_tenant(tenant, "us-east").quota(max_active_batches=BATCHES).obj())
    world.wait_reconciled(tenant)
    for _ in range(BATCHES):
        world.create(
            builders.make_batch(unique_name("b"), tenant=tenant)
            .namespace(f"tenant-{tenant}").items(3, size="64x64").obj()
        )  # fmt: skip
    waiting.until(
        lambda: set(phases(world, tenant).values()) == {"Queued"},
        timeout=180,
        what="every batch queued",
    )

    replacement = operatorproc.OperatorProcess(
        setup=operator_setup, log_path=tmp_path / "replacement.log"
    )
    replacement.start()
    # Stopped while it resumes: Kopf has started the resume handler of some batch.
    waiting.until(lambda: "admit_batch" in replacement.log(), timeout=60, what="resuming")
    code = replacement.stop()

    output = replacement.log()
    assert code == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    assert set(phases(world, tenant).values()) == {"Queued"}

    again = operatorproc.OperatorProcess(setup=operator_setup, log_path=tmp_path / "again.log")
    again.start()
    assert again.stop() == 0, again.log()[-4000:]
