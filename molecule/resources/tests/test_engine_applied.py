# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""Shared by the scenarios that converge apply-engine.yml: read back what the kernel itself reports.

The slice knob is min_granularity_ns on CFS kernels (before 6.6) and base_slice_ns on EEVDF kernels; which one this
guest has is decided from its release, not from what the collection reported.
"""

import re

DEBUG_SCHED = "/sys/kernel/debug/sched"


def read(host, path):
    return host.file(path).content_string.strip()


def debugfs(host):
    host.run_test("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug")
    return DEBUG_SCHED


def slice_knob(host):
    major, minor = (int(part) for part in host.sysctl("kernel.osrelease").split(".")[:2])
    return "base_slice_ns" if (major, minor) >= (6, 6) else "min_granularity_ns"


def test_only_this_generations_slice_knob_exists(host):
    other = "min_granularity_ns" if slice_knob(host) == "base_slice_ns" else "base_slice_ns"
    assert host.file(f"{debugfs(host)}/{slice_knob(host)}").exists
    assert not host.file(f"{DEBUG_SCHED}/{other}").exists


def test_autogroup_off(host):
    assert read(host, "/proc/sys/kernel/sched_autogroup_enabled") == "0"


def test_slice(host):
    assert read(host, f"{debugfs(host)}/{slice_knob(host)}") == "3000000"


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
    assert re.search(rf"^w\S*\s+/sys/kernel/debug/sched/{slice_knob(host)}\s.*\b3000000\s*$",
                     tmpfiles.content_string, re.M)
    assert host.file("/var/lib/aitune/baseline.json").is_file
