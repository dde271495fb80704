# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""CFS (6.1): the guest runs the kernel generation this scenario is about. The applied values are checked by
molecule/resources/tests/test_engine_applied.py."""

DEBUG_SCHED = "/sys/kernel/debug/sched"


def test_kernel_is_cfs(host):
    host.run_test("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug")
    assert host.sysctl("kernel.osrelease").startswith("6.1.")
    assert host.file(f"{DEBUG_SCHED}/min_granularity_ns").exists
    assert not host.file(f"{DEBUG_SCHED}/base_slice_ns").exists
