# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""Shared by the mode scenarios: what each mode promises, read from the kernel's own files (/proc/sys, /sys,
cgroupfs, /proc/PID), never from what Ansible reported. The scenario's lab_mode says which mode was applied."""

import json
import re

import pytest

CGROUP = "/sys/fs/cgroup"
LATENCY_SLICE = f"{CGROUP}/aitune.slice/aitune-latency.slice"
BATCH_SLICE = f"{CGROUP}/aitune.slice/aitune-batch.slice"


def mode(host):
    return host.ansible.get_variables()["lab_mode"]


def read(host, path):
    return host.file(path).content_string.strip()


def main_pid(host, unit):
    pid = host.check_output(f"systemctl show -P MainPID {unit}").strip()
    assert pid not in ("", "0"), f"{unit} is not running"
    return pid


def cpulist(text):
    cpus = set()
    for part in filter(None, text.strip().split(",")):
        low, dummy, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def needs(host, *modes):
    if mode(host) not in modes:
        pytest.skip(f"not part of the {mode(host)} mode")


def partitioned(host):
    """Whether the platform's shape leaves a latency CPU: the scenario says so (lab_cpu_partition: false on one CPU per
    NUMA node), and the tests of either answer read the guest, so a wrong answer fails one of them."""
    return host.ansible.get_variables().get("lab_cpu_partition", True)


def needs_partition(host):
    needs(host, "aggressive")
    if not partitioned(host):
        pytest.skip("this shape has no CPU partition: test_partition_unsupported_on_this_shape reads it")


# -- every mode --------------------------------------------------------------------------------------------------------
def test_swappiness(host):
    assert read(host, "/proc/sys/vm/swappiness") == "10"


def test_numa_balancing_off(host):
    if not host.file("/proc/sys/kernel/numa_balancing").exists:
        pytest.skip("this kernel has no NUMA balancing")
    assert read(host, "/proc/sys/kernel/numa_balancing") == "0"


def test_sysctl_file_persists_them(host):
    content = host.file("/etc/sysctl.d/90-aitune.conf").content_string
    assert re.search(r"^vm\.swappiness = 10$", content, re.M)


def test_local_fact_records_the_mode(host):
    fact = host.file("/etc/ansible/facts.d/aitune.fact")
    assert fact.is_file
    assert f'"mode": "{mode(host)}"' in fact.content_string


def test_nvme_queue(host):
    assert "[none]" in read(host, "/sys/block/nvme0n1/queue/scheduler")
    assert read(host, "/sys/block/nvme0n1/queue/read_ahead_kb") == "512"
    assert read(host, "/sys/block/nvme0n1/queue/nr_requests") == "64"
    assert host.file("/etc/udev/rules.d/90-aitune-block.rules").contains("read_ahead_kb")


# -- conservative ------------------------------------------------------------------------------------------------------
def test_conservative_places_nothing(host):
    needs(host, "conservative")
    assert not host.file(LATENCY_SLICE).exists
    assert not host.file("/etc/systemd/system/lab-agent.service.d/90-aitune.conf").exists
    pid = main_pid(host, "lab-agent.service")
    assert "aitune" not in read(host, f"/proc/{pid}/cgroup")


# -- balanced and aggressive -------------------------------------------------------------------------------------------
def test_slices_weighted(host):
    needs(host, "balanced", "aggressive")
    assert read(host, f"{LATENCY_SLICE}/cpu.weight") == "10000"
    assert read(host, f"{BATCH_SLICE}/cpu.weight") == "1"


def test_latency_service_placed(host):
    needs(host, "balanced", "aggressive")
    pid = main_pid(host, "lab-agent.service")
    assert "/aitune.slice/aitune-latency.slice/lab-agent.service" in read(host, f"/proc/{pid}/cgroup")
    # The kernel gives RT tasks no slack at all (timerslack_ns reads 0 under SCHED_FIFO, aggressive mode).
    assert read(host, f"/proc/{pid}/timerslack_ns") == ("0" if mode(host) == "aggressive" else "1")


def test_batch_service_placed(host):
    needs(host, "balanced", "aggressive")
    pid = main_pid(host, "lab-batch.service")
    assert "/aitune.slice/aitune-batch.slice/lab-batch.service" in read(host, f"/proc/{pid}/cgroup")


def test_balanced_keeps_normal_scheduling(host):
    needs(host, "balanced")
    pid = main_pid(host, "lab-agent.service")
    assert "SCHED_OTHER" in host.check_output(f"chrt -p {pid}")


# -- aggressive --------------------------------------------------------------------------------------------------------
def test_latency_service_fifo_with_throttling(host):
    needs(host, "aggressive")
    pid = main_pid(host, "lab-agent.service")
    out = host.check_output(f"chrt -p {pid}")
    assert "SCHED_FIFO" in out
    assert re.search(r"priority: 10$", out, re.M)
    assert read(host, "/proc/sys/kernel/sched_rt_runtime_us") == "950000"


def test_cpu_partition_keeps_housekeeping(host):
    needs_partition(host)
    latency = cpulist(read(host, f"{LATENCY_SLICE}/cpuset.cpus"))
    batch = cpulist(read(host, f"{BATCH_SLICE}/cpuset.cpus"))
    assert latency and batch
    assert 0 not in latency, "CPU 0 is housekeeping and must never be reserved for latency work"
    assert 0 in batch


def test_device_irqs_on_housekeeping_side(host):
    needs_partition(host)
    latency = cpulist(read(host, f"{LATENCY_SLICE}/cpuset.cpus"))
    moved = 0
    for line in host.check_output("cat /proc/interrupts").splitlines()[1:]:
        irq = line.split(":", 1)[0].strip()
        if not irq.isdigit() or not re.search(r"virtio|nvme", line):
            continue
        affinity = cpulist(read(host, f"/proc/irq/{irq}/smp_affinity_list"))
        if not affinity & latency:
            moved += 1
    assert moved > 0


def test_unbound_workqueues_off_latency_cpus(host):
    needs_partition(host)
    latency = cpulist(read(host, f"{LATENCY_SLICE}/cpuset.cpus"))
    mask = int(read(host, "/sys/devices/virtual/workqueue/cpumask").replace(",", ""), 16)
    assert mask and not any(mask >> cpu & 1 for cpu in latency)


# The settings of the aggressive mode that follow the CPU partition (besides one per device IRQ), which a shape without
# a latency CPU cannot carry.
PARTITION_KNOBS = ("cgroup.aitune-latency.cpuset.cpus", "cgroup.aitune-batch.cpuset.cpus", "irq.default_affinity",
                   "workqueue.cpumask")


def test_partition_unsupported_on_this_shape(host):
    needs(host, "aggressive")
    if partitioned(host):
        pytest.skip("this shape has a CPU partition: the tests above read it")
    nodes = read(host, "/sys/devices/system/node/online")
    online = read(host, "/sys/devices/system/cpu/online")
    recorded = json.loads(read(host, "/etc/ansible/facts.d/aitune.fact"))
    # Each CPU is CPU 0 of its own NUMA node: unsupported, with the shape named, and recorded as such.
    reason = recorded["unsupported"].get("cgroup.aitune-latency.cpuset.cpus", "")
    assert reason.startswith("no CPU left for the latency set"), recorded["unsupported"]
    assert f"({online})" in reason and "NUMA node" in reason, reason
    for name in PARTITION_KNOBS:
        assert recorded["knobs"][name] == "unsupported" and recorded["unsupported"][name] == reason, name
    # Nothing of it was written: the slices have no CPUs of their own, IRQs, new IRQs and unbound workers keep every
    # CPU.
    assert nodes == "0-1"
    for slice_dir in (LATENCY_SLICE, BATCH_SLICE):
        assert not host.file(f"{slice_dir}/cpuset.cpus").exists or read(host, f"{slice_dir}/cpuset.cpus") == ""
    every = sum(1 << cpu for cpu in cpulist(online))
    assert int(read(host, "/proc/irq/default_smp_affinity").replace(",", ""), 16) == every
    assert int(read(host, "/sys/devices/virtual/workqueue/cpumask").replace(",", ""), 16) == every
    # Only the partition's settings are left out for the shape; every other setting left out says its own reason,
    # and the rest of the mode applied (FIFO placement in the weighted slices: the tests above).
    for_the_shape = {name for name, why in recorded["unsupported"].items() if why == reason}
    assert all(name in PARTITION_KNOBS or name.startswith("irq.") for name in for_the_shape), for_the_shape
    left_out = {name for name, state in recorded["knobs"].items() if state != "applied"}
    assert left_out <= set(recorded["unsupported"]) | set(recorded.get("not_permitted", {}))
