# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""After the gate stopped the rollout: the canary was tuned, benchmarked and put back to stock, and the fleet host was
never touched. Read from the guests' own files and the kernel, not from what Ansible reported."""

import glob
import json
import os

import pytest

# The checkout: the controller side, where the converge wrote the gate's report (reports/lab/gate).
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CANARY = "gate-canary"
FLEET = "gate-fleet"
SLICE_UNITS = ("/etc/systemd/system/aitune.slice", "/etc/systemd/system/aitune-latency.slice",
               "/etc/systemd/system/aitune-batch.slice")
STATE = ("/var/lib/aitune/baseline.json", "/var/lib/aitune/state.json", "/etc/ansible/facts.d/aitune.fact",
         "/etc/sysctl.d/90-aitune.conf")


def name(host):
    return host.ansible.get_variables()["inventory_hostname"]


def only_on(host, wanted):
    if name(host) != wanted:
        pytest.skip(f"checks {wanted} only")


def test_no_tuning_is_left(host):
    # Both guests: the canary after its restore, the fleet host because nothing ever ran there.
    for path in STATE + SLICE_UNITS:
        assert not host.file(path).exists, path
    assert not host.file("/sys/fs/cgroup/aitune.slice").exists
    assert host.file("/proc/sys/vm/swappiness").content_string.strip() == "60"


def test_services_are_not_placed(host):
    for unit in ("lab-agent.service", "lab-batch.service"):
        assert host.check_output(f"systemctl show -P Slice {unit}").strip() == "system.slice"
        dropins = host.check_output(f"systemctl show -P DropInPaths {unit}")
        assert "aitune" not in dropins, dropins


def test_canary_was_tuned_and_benchmarked_before_its_restore(host):
    only_on(host, CANARY)
    # The gate's report, written on the controller, holds the canary's measured arms: proof it was benchmarked.
    reports = glob.glob(os.path.join(REPO, "reports", "lab", "gate", "*", "report.json"))
    assert reports, "the gate wrote no report"
    with open(max(reports, key=os.path.getmtime), encoding="utf-8") as handle:
        arms = json.load(handle)["arms"][CANARY]
    assert {"stock", "balanced"} <= {arm["label"] for arm in arms}
    # Its restore left nothing of the collection behind, the benchmark's calibration included.
    assert not host.file("/var/lib/aitune").exists
    # systemd logged the bad latency slice being made (and stopped by the restore).
    journal = host.check_output("journalctl --no-pager -q -u aitune-latency.slice")
    assert "aitune-latency.slice" in journal


def test_fleet_host_was_never_touched(host):
    only_on(host, FLEET)
    assert not host.file("/var/lib/aitune").exists
    assert host.check_output("journalctl --no-pager -q -u aitune-latency.slice").strip() == ""
