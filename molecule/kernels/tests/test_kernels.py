# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""After the reboot, on the modular kernels: the guest runs the flavour its platform names, NVMe, virtio and ext4 are
modules, the reboot gave the device IRQs other numbers, and every IRQ, found by what it is, has the affinity it had
in the tuned boot before. molecule/resources/tests/test_mode_applied.py reads what the host's mode promises, and
test_engine_applied.py the engine knobs in debugfs' CFS layout.
"""

import json
import re

import pytest

# What a device IRQ's actions are called in /proc/interrupts on these guests: nvme0q0..., virtio0-config...
DEVICE_IRQ = re.compile(r"\b(nvme\d+q\d+|virtio\d+-\S+)$")


def variables(host):
    return host.ansible.get_variables()


def read(host, path):
    return host.file(path).content_string.strip()


def load(host, path):
    return json.loads(host.file(path).content_string)


def device_irqs(text):
    """{action: IRQ number} of the NVMe and virtio IRQs in a /proc/interrupts text."""
    found = {}
    for line in text.splitlines()[1:]:
        number, _sep, rest = line.partition(":")
        match = DEVICE_IRQ.search(rest.strip())
        if number.strip().isdigit() and match:
            found[match.group(1)] = int(number)
    return found


def test_kernel_is_the_platforms_flavour(host):
    release = host.sysctl("kernel.osrelease")
    preemption = variables(host)["lab_preemption"]
    assert release.startswith("6.1.0-")
    assert release.endswith("-rt-amd64") == (preemption == "PREEMPT_RT")
    assert not release.endswith("-cloud-amd64")
    assert preemption in host.check_output("uname -v").split()


@pytest.mark.parametrize("module", ["nvme", "virtio_blk", "virtio_net", "virtio_pci", "ext4"])
def test_drivers_are_modules(host, module):
    # Built-in drivers have no initstate; a loaded module reads "live".
    assert read(host, f"/sys/module/{module}/initstate") == "live"


def test_vm_did_reboot(host):
    before = read(host, "/var/lib/aitune-lab/boot-id-before-reboot")
    assert before and read(host, "/proc/sys/kernel/random/boot_id") != before


def test_the_reboot_numbered_the_device_irqs_anew(host):
    before = device_irqs(read(host, "/var/lib/aitune-lab/interrupts-before-reboot"))
    now = device_irqs(read(host, "/proc/interrupts"))
    assert any(name.startswith("nvme") for name in before) and any(name.startswith("virtio") for name in before)
    # The same interrupts in both boots, under other numbers.
    assert set(now) == set(before)
    moved = {name for name in now if now[name] != before[name]}
    assert any(name.startswith("nvme") for name in moved), (before, now)
    assert any(name.startswith("virtio") for name in moved), (before, now)


def test_every_irq_kept_its_affinity_by_what_it_is(host):
    tuned = load(host, "/var/tmp/aitune-lab-tuned-kernel.json")["irq"]
    rebooted = load(host, "/var/tmp/aitune-lab-rebooted-kernel.json")["irq"]
    # The snapshot names each IRQ by chip, hardware IRQ and actions where it has a handler.
    named = {key for key in tuned if key.startswith("irq ")}
    assert {key for key in rebooted if key.startswith("irq ")} == named
    assert {key: rebooted[key] for key in named} == {key: tuned[key] for key in named}
    # And the steering is in it: device IRQs on CPU 0 alone, where a boot leaves them on every CPU.
    steered = [key for key in named if DEVICE_IRQ.search(key) and tuned[key] == "0"]
    assert steered, tuned


def test_the_rebooted_facts_name_the_preemption_model(host):
    kernel = load(host, "/var/tmp/aitune-lab-rebooted-facts.json")["kernel"]
    rt = variables(host)["lab_preemption"] == "PREEMPT_RT"
    assert kernel["preempt_rt"] is rt, kernel
    # Both kernels say which model they run and where that was read.
    assert kernel["preemption"] and kernel["preemption_source"], kernel
