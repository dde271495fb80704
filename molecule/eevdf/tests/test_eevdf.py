# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""EEVDF (6.12, two NUMA nodes): read back what the kernel itself reports after converge."""

import re

DEBUG_SCHED = "/sys/kernel/debug/sched"


def read(host, path):
    return host.file(path).content_string.strip()


def debugfs(host):
    host.run_test("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug")
    return DEBUG_SCHED


def test_kernel_is_eevdf(host):
    assert host.sysctl("kernel.osrelease").startswith("6.12.")
    assert host.file(f"{debugfs(host)}/base_slice_ns").exists
    assert not host.file(f"{DEBUG_SCHED}/min_granularity_ns").exists


def test_two_numa_nodes_and_nvme(host):
    assert read(host, "/sys/devices/system/node/online") == "0-1"
    assert host.file("/sys/class/nvme/nvme0").exists


def test_autogroup_off(host):
    assert read(host, "/proc/sys/kernel/sched_autogroup_enabled") == "0"


def test_base_slice(host):
    assert read(host, f"{debugfs(host)}/base_slice_ns") == "3000000"


def test_migration_cost(host):
    assert read(host, f"{debugfs(host)}/migration_cost_ns") == "600000"


def test_swappiness(host):
    assert read(host, "/proc/sys/vm/swappiness") == "10"


def test_persistence_files(host):
    sysctl = host.file("/etc/sysctl.d/90-aitune.conf")
    assert sysctl.is_file
    assert re.search(r"^\s*vm\.swappiness\s*=\s*10\s*$", sysctl.content_string, re.M)
    assert re.search(r"^\s*kernel\.sched_autogroup_enabled\s*=\s*0\s*$", sysctl.content_string, re.M)
    tmpfiles = host.file("/etc/tmpfiles.d/aitune.conf")
    assert tmpfiles.is_file
    assert re.search(r"^w\S*\s+/sys/kernel/debug/sched/base_slice_ns\s.*\b3000000\s*$",
                     tmpfiles.content_string, re.M)
    assert host.file("/var/lib/aitune/baseline.json").is_file
