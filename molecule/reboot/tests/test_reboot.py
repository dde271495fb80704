# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""After a reboot the persisted settings are live again, applied by the boot itself."""


def read(host, path):
    return host.file(path).content_string.strip()


def test_vm_did_reboot(host):
    before = read(host, "/var/lib/aitune-lab/boot-id-before-reboot")
    assert before
    assert read(host, "/proc/sys/kernel/random/boot_id") != before


def test_sysctl_d_values_are_back(host):
    assert read(host, "/proc/sys/vm/swappiness") == "10"
    assert read(host, "/proc/sys/kernel/sched_autogroup_enabled") == "0"


def test_tmpfiles_debugfs_knobs_are_back(host):
    # Do not mount debugfs here: the boot (systemd) must have done it for the
    # tmpfiles "w" line to apply.
    assert host.file("/sys/kernel/debug/sched").is_directory
    assert read(host, "/sys/kernel/debug/sched/base_slice_ns") == "3000000"
    assert read(host, "/sys/kernel/debug/sched/migration_cost_ns") == "600000"
