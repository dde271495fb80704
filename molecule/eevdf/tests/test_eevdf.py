# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""EEVDF (6.12) on two NUMA nodes of one CPU each, with NVMe: balanced on eevdf612, aggressive on numa612;
molecule/resources/tests/test_mode_applied.py reads what the mode promises from the kernel, and
molecule/resources/tests/test_engine_applied.py the engine knobs in EEVDF's debugfs layout."""


def test_kernel_is_6_12(host):
    assert host.sysctl("kernel.osrelease").startswith("6.12.")


def test_two_numa_nodes_and_nvme(host):
    assert host.file("/sys/devices/system/node/online").content_string.strip() == "0-1"
    assert host.file("/sys/class/nvme/nvme0").exists
