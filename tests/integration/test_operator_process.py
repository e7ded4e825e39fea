"""`imagegen operator` as a user runs it: it starts under its ServiceAccount, answers its
liveness probe, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import pathlib

from imagegen.localcluster import cluster, operatorsetup
from tests.integration import operatorproc


def test_operator_starts_serves_liveness_and_exits_cleanly_on_sigterm(
    management: cluster.LocalCluster,
    operator_setup: operatorsetup.OperatorSetup,
    tmp_path: pathlib.Path,
) -> None:
    operator = operatorproc.OperatorProcess(
        setup=operator_setup, log_path=tmp_path / "operator.log"
    )
    operator.start()
    assert operator.stop() == 0
    output = operator.log()
    assert "imagegen operator starting" in output
    assert "imagegen operator stopped" in output
    assert "Traceback" not in output
    assert management.token not in output, "the admin token leaked into the logs"
