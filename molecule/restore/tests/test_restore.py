# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""After restore: the kernel's own files hold the values seen before the first apply."""

import json

import pytest


def read(host, path):
    return host.file(path).content_string.strip()


@pytest.fixture()
def before_raw(host):
    host.run_test("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug")
    # "grep -H ." lines, "path:value", of the files that existed before the first apply
    lines = json.loads(host.file("/var/tmp/aitune-lab-before-raw.json").content_string)
    data = dict(line.split(":", 1) for line in lines)
    assert "/proc/sys/vm/swappiness" in data
    return {path: value.strip() for path, value in data.items()}


def test_kernel_values_are_back(host, before_raw):
    now = {path: read(host, path) for path in before_raw}
    assert now == before_raw


def test_values_really_were_changed_by_the_test(before_raw):
    # The scenario is only meaningful if apply moved the knobs away from the defaults.
    # (autogroup is already 0 at boot on these guests, so it does not count here.)
    assert before_raw["/proc/sys/vm/swappiness"] != "10"
    assert before_raw["/sys/kernel/debug/sched/migration_cost_ns"] != "600000"
    slice_knob = [p for p in before_raw if p.endswith(("/min_granularity_ns", "/base_slice_ns"))]
    assert slice_knob and before_raw[slice_knob[0]] != "3000000"


def test_managed_files_are_gone(host):
    assert not host.file("/etc/sysctl.d/90-aitune.conf").exists
    assert not host.file("/etc/tmpfiles.d/aitune.conf").exists
