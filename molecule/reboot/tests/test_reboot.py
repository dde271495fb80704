# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""After a reboot the persisted settings are live again, applied by the boot itself and read from the kernel.

molecule/resources/tests/test_mode_applied.py reads every promise of the host's mode after the reboot (sysctls, the
NVMe queue from the udev rules, slices, placement, the CPU partition, IRQs and workqueues); this file adds what only a
reboot shows: that the boot, not the converge, put each value there.
"""

import json
import re

import pytest

# The CPU latency that no PM QoS request at all reads as (the kernel's PM_QOS_CPU_LATENCY_DEFAULT_VALUE).
NO_PM_QOS_REQUEST = 2000000000
HOLDER = "aitune-pmqos.service"


def read(host, path):
    return host.file(path).content_string.strip()


def variables(host):
    return host.ansible.get_variables()


def release(host):
    return tuple(int(part) for part in host.sysctl("kernel.osrelease").split(".")[:2])


def main_pid(host, unit):
    pid = host.check_output(f"systemctl show -P MainPID {unit}").strip()
    assert pid not in ("", "0"), f"{unit} is not running after the reboot"
    return pid


def sched_field(host, pid, field):
    return int(re.search(rf"^{field}\s*:\s*(-?\d+)", read(host, f"/proc/{pid}/sched"), re.M).group(1))


def pm_qos(host):
    return int(host.check_output(
        "python3 -c 'import struct; print(struct.unpack(\"i\", open(\"/dev/cpu_dma_latency\", \"rb\").read(4))[0])'"))


def test_vm_did_reboot(host):
    before = read(host, "/var/lib/aitune-lab/boot-id-before-reboot")
    assert before
    assert read(host, "/proc/sys/kernel/random/boot_id") != before


def test_sysctl_d_values_are_back(host):
    assert read(host, "/proc/sys/vm/swappiness") == "10"
    assert read(host, "/proc/sys/kernel/sched_autogroup_enabled") == "0"


def test_tmpfiles_debugfs_knobs_are_back(host):
    # Do not mount debugfs here: the boot (systemd) must have done it for the tmpfiles "w" lines to apply.
    assert host.file("/sys/kernel/debug/sched").is_directory
    slice_knob = "base_slice_ns" if release(host) >= (6, 6) else "min_granularity_ns"
    assert read(host, f"/sys/kernel/debug/sched/{slice_knob}") == "3000000"
    assert read(host, "/sys/kernel/debug/sched/migration_cost_ns") == "600000"


def test_tmpfiles_sysfs_values_are_back(host):
    assert read(host, "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages") == "16"
    if variables(host)["lab_mode"] == "aggressive":
        # CPU 0 is the housekeeping side of two CPUs: new IRQs and unbound kernel workers default there.
        assert read(host, "/proc/irq/default_smp_affinity") == "1"
        assert read(host, "/sys/devices/virtual/workqueue/cpumask") == "1"


def test_nvme_queue_comes_back_from_the_udev_rules(host):
    rules = host.file("/etc/udev/rules.d/90-aitune-block.rules")
    assert rules.contains("read_ahead_kb") and rules.contains("nr_requests")
    assert read(host, "/sys/block/nvme0n1/queue/read_ahead_kb") == "512"
    assert read(host, "/sys/block/nvme0n1/queue/nr_requests") == "64"


def test_slice_properties_are_back(host):
    latency = "/sys/fs/cgroup/aitune.slice/aitune-latency.slice"
    assert read(host, f"{latency}/cpu.weight") == "10000"
    assert read(host, "/sys/fs/cgroup/aitune.slice/aitune-batch.slice/cpu.weight") == "1"
    if variables(host)["lab_mode"] == "aggressive":
        assert read(host, f"{latency}/cpuset.cpus") == "1"


def test_latency_service_starts_placed(host):
    pid = main_pid(host, "lab-agent.service")
    assert read(host, f"/proc/{pid}/cgroup") == "0::/aitune.slice/aitune-latency.slice/lab-agent.service"
    policy, prio = sched_field(host, pid, "policy"), sched_field(host, pid, "prio")
    if variables(host)["lab_mode"] == "aggressive":
        # SCHED_FIFO (1) at priority 10, which /proc/PID/sched shows as prio 99 - 10. The kernel keeps no timer slack
        # for RT tasks and reports 0.
        assert (policy, prio) == (1, 89)
        assert read(host, f"/proc/{pid}/timerslack_ns") == "0"
    else:
        # SCHED_OTHER (0) at nice 0 (prio 120), with the drop-in's 1 ns slack instead of the default 50 us.
        assert (policy, prio) == (0, 120)
        assert read(host, f"/proc/{pid}/timerslack_ns") == "1"


def test_irqbalance_keeps_irqs_off_the_latency_cpu(host):
    if variables(host)["lab_mode"] != "aggressive":
        pytest.skip("the balanced mode leaves IRQs alone")
    assert re.search(r"^IRQBALANCE_BANNED_CPULIST=1$", read(host, "/etc/default/irqbalance"), re.M)
    assert host.service("irqbalance").is_running


def test_cpuidle_driver_is_the_platforms(host):
    # Decided by the platform (an SSDT with _CST or none), not by what the guest shows: a missing driver fails here.
    assert read(host, "/sys/devices/system/cpu/cpuidle/current_driver") == variables(host)["lab_cpuidle_driver"]


def test_pm_qos_holder_after_the_reboot(host):
    requested = 20
    if variables(host)["lab_cpuidle_driver"] != "none":
        assert host.service(HOLDER).is_enabled
        assert host.service(HOLDER).is_running
        assert pm_qos(host) == requested
        return
    # No cpuidle driver under TCG: the module reports the request unsupported, with its reason, installs nothing,
    # and nothing holds /dev/cpu_dma_latency.
    recorded = json.loads(read(host, "/etc/ansible/facts.d/aitune.fact"))
    assert recorded["knobs"]["cpuidle.pm_qos"] == "unsupported"
    assert "no cpuidle driver" in recorded["unsupported"]["cpuidle.pm_qos"]
    assert not host.file(f"/etc/systemd/system/{HOLDER}").exists
    assert host.check_output(f"systemctl list-units --all --plain --no-legend {HOLDER}").strip() == ""
    assert pm_qos(host) == NO_PM_QOS_REQUEST
