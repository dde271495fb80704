# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""After aitune.kernel.restore the guest is as it was before the first apply.

Three snapshots of the kernel's own files (molecule/resources/kernel_snapshot.py, run on the guest) are compared: before
the first apply, after the apply (to prove the apply changed what restore must undo) and now. The full tuning_facts
from before the first apply are compared with those read after restore. Then each promise is read once more directly:
no managed file, unit or cgroup is left, the stand-in services run as they did, the NVMe queue and PM QoS are back.
"""

import json
import re
import sys
from pathlib import Path

import pytest

# The crash-fault driver compares snapshots the same way: one comparison for both.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools" / "lab"))
from faults import differences  # noqa: E402

SNAPSHOT = "/usr/local/lib/aitune-lab-snapshot.py"
BEFORE_KERNEL = "/var/tmp/aitune-lab-before-kernel.json"
TUNED_KERNEL = "/var/tmp/aitune-lab-tuned-kernel.json"
BEFORE_FACTS = "/var/tmp/aitune-lab-before-facts.json"
AFTER_FACTS = "/var/tmp/aitune-lab-after-facts.json"
SERVICES = ("lab-agent.service", "lab-batch.service")
# The CPU latency that no PM QoS request at all reads as (the kernel's PM_QOS_CPU_LATENCY_DEFAULT_VALUE).
NO_PM_QOS_REQUEST = 2000000000

# tuning_facts fields that differ between the two snapshots for a reason other than tuning, with the reason. Both are
# read in the same boot by the same collection, so none is excluded: kernel.boot_id, the only field that changes by
# itself, changes only at a reboot.
FACTS_EXCLUDED = {}

# Kernel snapshot entries that differ for a reason other than tuning, with the reason. None: a restore of everything
# also removes the collection's own state (/var/lib/aitune with its lock) and the facts directories the record's first
# write created (/etc/ansible/facts.d, /etc/ansible), so the guest's files are as they were before the first apply.
KERNEL_EXCLUDED = {}

MANAGED_FILES = (
    "/etc/sysctl.d/90-aitune.conf",
    "/etc/tmpfiles.d/aitune.conf",
    "/etc/modprobe.d/90-aitune.conf",
    "/etc/udev/rules.d/90-aitune-block.rules",
    "/etc/default/grub.d/90-aitune.cfg",
    "/etc/systemd/system/aitune.slice",
    "/etc/systemd/system/aitune-latency.slice",
    "/etc/systemd/system/aitune-batch.slice",
    "/etc/systemd/system/aitune-pmqos.service",
    "/etc/systemd/system/lab-agent.service.d/90-aitune.conf",
    "/etc/systemd/system/lab-batch.service.d/90-aitune.conf",
    "/etc/ansible/facts.d/aitune.fact",
    "/var/lib/aitune/baseline.json",
    "/var/lib/aitune/state.json",
)


def load(host, path):
    return json.loads(host.file(path).content_string)


@pytest.fixture()
def before(host):
    return load(host, BEFORE_KERNEL)


@pytest.fixture()
def tuned(host):
    return load(host, TUNED_KERNEL)


def main_pid(host, unit):
    pid = host.check_output(f"systemctl show -P MainPID {unit}").strip()
    assert pid not in ("", "0"), f"{unit} is not running"
    return pid


def pm_qos(host):
    return int(host.check_output(
        "python3 -c 'import struct; print(struct.unpack(\"i\", open(\"/dev/cpu_dma_latency\", \"rb\").read(4))[0])'"))


# -- the full comparisons ----------------------------------------------------------------------------------------------
def test_tuning_facts_equal_those_from_before_the_first_apply(host):
    before, after = load(host, BEFORE_FACTS), load(host, AFTER_FACTS)
    assert before["knobs"], "the snapshot from before the first apply holds no knobs"
    diff = differences(before, after, FACTS_EXCLUDED)
    assert not diff, "tuning_facts differ from before the first apply:\n" + "\n".join(diff)


def test_kernel_files_equal_those_from_before_the_first_apply(host, before):
    now = json.loads(host.check_output(f"python3 {SNAPSHOT}"))
    diff = differences(before, now, KERNEL_EXCLUDED)
    assert not diff, "the guest differs from before the first apply:\n" + "\n".join(diff)


def test_the_apply_changed_what_restore_undid(host, before, tuned):
    # Without this the comparisons above could pass on a guest the apply never touched.
    changed = {name.split(".", 1)[0] for name in differences(before, tuned, KERNEL_EXCLUDED)}
    assert {"sysctl", "debugfs", "memory", "block", "irq", "cgroup", "services", "files"} <= changed
    agent = tuned["services"]["lab-agent.service"]
    assert agent["policy"] == "SCHED_FIFO" and agent["slice"] == "aitune-latency.slice"
    assert tuned["block"]["/sys/block/nvme0n1/queue/read_ahead_kb"] == "512"
    assert tuned["memory"]["/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] == "16"
    # CPU 0 is the housekeeping side of the two CPUs: the unbound workqueues went there.
    assert tuned["irq"]["/sys/devices/virtual/workqueue/cpumask"] == "1"
    assert "/etc/systemd/system/aitune-latency.slice" in tuned["files"]


def test_pm_qos_holder_ran_where_the_guest_has_idle_states(host, before, tuned):
    driver = host.ansible.get_variables()["lab_cpuidle_driver"]
    assert tuned["power"]["/sys/devices/system/cpu/cpuidle/current_driver"] == driver
    assert before["power"]["/dev/cpu_dma_latency"] == NO_PM_QOS_REQUEST
    if driver == "none":
        assert tuned["power"]["/dev/cpu_dma_latency"] == NO_PM_QOS_REQUEST
        assert "aitune-pmqos.service" not in tuned["services"]["aitune units loaded"]
    else:
        assert tuned["power"]["/dev/cpu_dma_latency"] == 20
        assert "aitune-pmqos.service" in tuned["services"]["aitune units loaded"]


# -- each promise, read directly ---------------------------------------------------------------------------------------
def test_no_managed_file_left(host):
    left = [path for path in MANAGED_FILES if host.file(path).exists]
    left += host.check_output(
        "find /etc/systemd /etc/udev /etc/sysctl.d /etc/tmpfiles.d /etc/modprobe.d /etc/default -name '*aitune*'"
        " ! -name 'aitune-lab*'").split()  # the lab image's own settings (journald)
    assert not left


def test_no_aitune_unit_or_cgroup_left(host):
    assert host.check_output("systemctl list-units --all --plain --no-legend 'aitune*'").strip() == ""
    assert host.check_output("find /sys/fs/cgroup -name '*aitune*'").strip() == ""


@pytest.mark.parametrize("unit", SERVICES)
def test_services_run_as_before(host, before, unit):
    pid = main_pid(host, unit)
    out = host.check_output(f"chrt -p {pid}")
    assert "SCHED_OTHER" in out and re.search(r"priority: 0$", out, re.M)
    assert host.file(f"/proc/{pid}/timerslack_ns").content_string.strip() == before["services"][unit]["timerslack_ns"]
    assert before["services"][unit]["timerslack_ns"] == "50000"
    assert host.file(f"/proc/{pid}/cgroup").content_string.strip() == f"0::/system.slice/{unit}"


def test_nvme_queue_back(host, before):
    for leaf in ("scheduler", "read_ahead_kb", "nr_requests"):
        path = f"/sys/block/nvme0n1/queue/{leaf}"
        assert host.file(path).content_string.strip() == before["block"][path]


def test_irq_and_workqueue_masks_back(host, before):
    for path in ("/proc/irq/default_smp_affinity", "/sys/devices/virtual/workqueue/cpumask"):
        assert host.file(path).content_string.strip() == before["irq"][path]


def test_no_pm_qos_request_left(host):
    assert pm_qos(host) == NO_PM_QOS_REQUEST
