# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Fake hosts with IRQs: /proc/interrupts, /proc/irq/<N>/, the default IRQ affinity and the workqueue mask, and the
kernel's side of writing them.

The tree is described in ``fixtures/trees/irq_*.yml``. The CPU list and mask code here is written separately from
_cpus.py on purpose, after the kernel's own rules (lib/bitmap-str.c, lib/vsprintf.c bitmap_string), so a bug in the
code under test cannot hide behind the same bug in its fake kernel.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re
import shutil

import yaml

from ansible_collections.aitune.kernel.tests.unit.fakehost import TREES_DIR

IRQ_PREC = 3  # the width of the IRQ number column while there are fewer than 1000 IRQs


def kernel_list(cpus):
    """The kernel's "%*pbl": ranges such as 0-3,6."""
    out, cpus = [], sorted(cpus)
    while cpus:
        low = high = cpus.pop(0)
        while cpus and cpus[0] == high + 1:
            high = cpus.pop(0)
        out.append(str(low) if low == high else '%d-%d' % (low, high))
    return ','.join(out)


def read_list(text):
    cpus = set()
    for part in text.strip().split(','):
        low, _sep, high = part.partition('-')
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def kernel_mask(cpus, nr_cpus):
    """The kernel's "%*pb" for a bitmap of ``nr_cpus`` bits."""
    chunks = []
    bits = nr_cpus
    chunk_bits = bits % 32 or 32
    start = (bits + 31) // 32 * 32 - 32
    while start >= 0:
        value = sum(1 << (cpu - start) for cpu in cpus if start <= cpu < start + chunk_bits)
        chunks.append('%0*x' % ((chunk_bits + 3) // 4, value))
        start -= 32
        chunk_bits = 32
    return ','.join(chunks)


def read_mask(text, nr_cpus):
    """bitmap_parse(): 32-bit groups; bits beyond ``nr_cpus`` are an error."""
    cpus = set()
    for index, group in enumerate(reversed(text.strip().split(','))):
        value = int(group, 16)
        cpus.update(index * 32 + bit for bit in range(32) if value >> bit & 1)
    if any(cpu >= nr_cpus for cpu in cpus):
        raise OSError(errno.EOVERFLOW, os.strerror(errno.EOVERFLOW))
    return cpus


def load_spec(name):
    with open(os.path.join(TREES_DIR, '%s.yml' % name)) as handle:
        return yaml.safe_load(handle)


def render_interrupts(spec):
    """/proc/interrupts as show_interrupts() prints it for the table in ``spec``: the IRQ number, a count per CPU,
    the chip name, the hwirq number with the flow handler, then the action names."""
    cpus = range(spec['cpus'])
    lines = [' ' * (IRQ_PREC + 8) + ''.join('CPU%-8d' % cpu for cpu in cpus)]
    for row in spec['irqs']:
        effective = read_list(row['effective'])
        counts = ''.join(' %10u' % (1000 + row['irq'] if cpu in effective else 0) for cpu in cpus)
        number, _sep, flow = row['hwirq'].partition('-')
        line = '%*d:%s %8s %*s-%-8s' % (IRQ_PREC, row['irq'], counts, row['chip'], IRQ_PREC, number, flow)
        if row['names']:
            line += '  ' + ', '.join(row['names'])
        lines.append(line)
    for row in spec['arch_rows']:
        if 'label' in row:
            counts = ''.join(' %10u' % (40000 + cpu) for cpu in cpus)
            lines.append('%*s:%s   %s' % (IRQ_PREC, row['name'], counts, row['label']))
        else:
            lines.append('%*s: %10u' % (IRQ_PREC, row['name'], 0))
    return '\n'.join(lines) + '\n'


# Where a PCI device's directory really is; /sys/bus/pci/devices/<address> is a symlink to it (irq_host makes them).
PCI_PARENT = '/sys/devices/pci0000:00'
PCI_DEVICES = '/sys/bus/pci/devices'


def pci_address(chip):
    """The PCI device of an MSI vector from its chip name: since 6.2 each device has its own MSI domain, whose chip
    is named PCI-MSI-<address> or PCI-MSIX-<address> (drivers/pci/msi/irqdomain.c); None for any other chip."""
    match = re.match(r'^PCI-MSIX?-(.+)$', chip)
    return match.group(1) if match else None


def msi_vectors(spec):
    """``{PCI address: [(irq, "msi" or "msix")]}``: what each device's msi_irqs directory lists."""
    devices = {}
    for row in spec['irqs']:
        address = pci_address(row['chip'])
        if address:
            kind = 'msix' if row['chip'].startswith('PCI-MSIX') else 'msi'
            devices.setdefault(address, []).append((row['irq'], kind))
    return devices


def sys_irq_files(row, nr_cpus):
    """/sys/kernel/irq/<N>/ of one row, as kernel/irq/irqdesc.c shows it: the chip, the hwirq number, the flow
    handler's name, the trigger type, the actions joined with "," and the per-CPU counts."""
    base = '/sys/kernel/irq/%d/' % row['irq']
    number, _sep, flow = row['hwirq'].partition('-')
    counts = ','.join(str(1000 + row['irq']) if cpu in read_list(row['effective']) else '0' for cpu in range(nr_cpus))
    return {base + 'chip_name': row['chip'] + '\n', base + 'hwirq': number + '\n', base + 'name': flow + '\n',
            base + 'type': ('level' if flow == 'fasteoi' else 'edge') + '\n', base + 'wakeup': 'disabled\n',
            base + 'actions': ','.join(row['names']) + '\n', base + 'per_cpu_count': counts + '\n'}


def knob_names(spec):
    """``{irq: knob name}`` for the IRQs of ``spec`` with actions, by the naming rule the irq module documents: the
    sorted actions; where other IRQs have the same, "~" and the PCI device (else the chip), then "#" and the hwirq
    number where that is still not enough. IRQs whose names cannot be told are left out."""
    # An action name with any other character (a blank, as in "PCIe PME") gives its IRQ no name.
    rows = [row for row in spec['irqs']
            if row['names'] and all(re.match(r'^[A-Za-z0-9_][A-Za-z0-9_.:@+\[\]-]*$', name) for name in row['names'])]
    names = {}
    for row in rows:
        actions = ','.join(sorted(row['names']))
        twins = [other for other in rows if sorted(other['names']) == sorted(row['names']) and other is not row]
        where = pci_address(row['chip']) or row['chip']
        if twins:
            if any((pci_address(other['chip']) or other['chip']) == where for other in twins):
                where += '#' + row['hwirq'].partition('-')[0]
            actions += '~' + where
        names[row['irq']] = 'irq.%s.affinity' % actions
    return names


def tree_files(spec, overrides=None):
    """The files of the IRQ part of the tree, for FakeHost(files=...)."""
    nr_cpus = spec['cpus']
    everything = set(range(nr_cpus))
    files = {
        '/proc/interrupts': render_interrupts(spec),
        '/sys/devices/system/cpu/online': kernel_list(everything) + '\n',
        '/sys/devices/system/cpu/possible': kernel_list(everything) + '\n',
        '/sys/devices/system/cpu/isolated': '\n',
        '/proc/irq/default_smp_affinity': kernel_mask(everything, nr_cpus) + '\n',
        '/sys/devices/virtual/workqueue/cpumask': kernel_mask(everything, nr_cpus) + '\n',
    }
    for node, cpulist in enumerate(spec['nodes']):
        files['/sys/devices/system/node/node%d/cpulist' % node] = cpulist + '\n'
    for row in spec['irqs']:
        base = '/proc/irq/%d/' % row['irq']
        affinity, effective = read_list(row['affinity']), read_list(row['effective'])
        files[base + 'smp_affinity_list'] = kernel_list(affinity) + '\n'
        files[base + 'smp_affinity'] = kernel_mask(affinity, nr_cpus) + '\n'
        files[base + 'effective_affinity_list'] = kernel_list(effective) + '\n'
        files[base + 'effective_affinity'] = kernel_mask(effective, nr_cpus) + '\n'
        files[base + 'affinity_hint'] = kernel_mask(set(), nr_cpus) + '\n'
        files[base + 'node'] = '0\n'
        files.update(sys_irq_files(row, nr_cpus))
    for address, vectors in msi_vectors(spec).items():
        for irq, kind in vectors:
            files['%s/%s/msi_irqs/%d' % (PCI_PARENT, address, irq)] = kind + '\n'
    files.update(overrides or {})
    return files


class IrqKernel(object):
    """The kernel's answers to writes in the IRQ files of a fake host (installed as FakeKernel handlers)."""

    def __init__(self, host, spec):
        self.host = host
        self.nr_cpus = spec['cpus']

    def online(self):
        return read_list(self.host.value('/sys/devices/system/cpu/online'))

    def irq_affinity(self, host_path, text):
        """write_irq_affinity(): a mask with no online CPU is EINVAL; x86 then delivers to one CPU of it."""
        try:
            cpus = read_list(text)
        except ValueError:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        if not cpus & self.online() or any(cpu >= self.nr_cpus for cpu in cpus):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        base = os.path.dirname(host_path)
        self.host.write(base + '/smp_affinity', kernel_mask(cpus, self.nr_cpus) + '\n')
        effective = {min(cpus & self.online())}
        self.host.write(base + '/effective_affinity_list', kernel_list(effective) + '\n')
        self.host.write(base + '/effective_affinity', kernel_mask(effective, self.nr_cpus) + '\n')
        return kernel_list(cpus)

    def default_affinity(self, host_path, text):
        """write_default_affinity(): at least one online CPU."""
        cpus = read_mask(text, self.nr_cpus)
        if not cpus & self.online():
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return kernel_mask(cpus, self.nr_cpus)

    def workqueue_mask(self, host_path, text):
        """workqueue_set_unbound_cpumask(): the mask is cut to the possible CPUs and may not end up empty."""
        cpus = read_mask(text, self.nr_cpus)
        if not cpus:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return kernel_mask(cpus, self.nr_cpus)


def reshape(spec, nodes):
    """``spec``'s guest given other CPUs: ``nodes`` holds the CPU list of each NUMA node (empty for a node with memory
    only), every CPU online. An IRQ the fixture lets go to all of its CPUs may go to all CPUs of the shape; any other
    keeps those of its CPUs the shape has, else CPU 0 (a guest with fewer CPUs spreads its queues over fewer)."""
    cpus = set()
    for cpulist in nodes:
        cpus |= read_list(cpulist) if cpulist else set()
    everything = set(range(spec['cpus']))
    rows = []
    for row in spec['irqs']:
        affinity = read_list(row['affinity'])
        affinity = set(cpus) if affinity == everything else (affinity & cpus or {0})
        effective = read_list(row['effective']) & affinity or {min(affinity)}
        rows.append(dict(row, affinity=kernel_list(affinity), effective=kernel_list(effective)))
    return dict(spec, cpus=max(cpus) + 1, nodes=list(nodes), irqs=rows)


def install_irqs(host, spec, managed):
    """What files alone cannot say: the action directories of /proc/irq/<N>/, the PCI devices' symlinks and how the
    kernel refuses moves of managed and fixed IRQs."""
    os.makedirs(host.path(PCI_DEVICES), exist_ok=True)
    for address in msi_vectors(spec):
        link = host.path('%s/%s' % (PCI_DEVICES, address))
        if not os.path.lexists(link):
            os.symlink('../../../devices/pci0000:00/%s' % address, link)
    for row in spec['irqs']:
        for action in row['names']:
            os.makedirs(host.path('/proc/irq/%d/%s' % (row['irq'], action)))
        for leaf in ('smp_affinity_list', 'smp_affinity'):
            path = '/proc/irq/%d/%s' % (row['irq'], leaf)
            if row.get('managed') and managed == 'readonly':
                os.chmod(host.path(path), 0o444)
            elif row.get('managed') or row.get('fixed'):
                host.kernel.reject[path] = errno.EIO


def reboot(host, spec, managed='readonly'):
    """Boot ``host`` again with the IRQs of ``spec``: another order of module loading gives the same devices other
    numbers (and a device may be gone or come twice). Every IRQ starts over at its affinity in ``spec``; the rest of
    the tree (the collection's state under /var/lib/aitune, /etc) stays, as it does across a reboot."""
    for top in ('/proc/irq', '/sys/kernel/irq', PCI_PARENT, PCI_DEVICES):
        if os.path.lexists(host.path(top)):
            shutil.rmtree(host.path(top))
    host.kernel.reject = {path: code for path, code in host.kernel.reject.items() if not path.startswith('/proc/irq/')}
    files = tree_files(spec)
    for path, content in files.items():
        if path.startswith(('/proc/irq/', '/sys/kernel/irq/', PCI_PARENT)) or path == '/proc/interrupts':
            host.write(path, content)
    install_irqs(host, spec, managed)
    host.irq_spec = spec


def irq_host(make_host, name='irq_numa2', managed='readonly', kernel='6.12', overrides=None, shape=None):
    """A fake host with the IRQs of ``fixtures/trees/<name>.yml``, or with its IRQs on the CPUs of ``shape`` (the CPU
    list of each NUMA node; see reshape).

    ``managed`` says how the kernel refuses to move managed IRQs: ``readonly`` (the affinity files are 0444, as newer
    kernels make them) or ``eio`` (writable files, EIO on write, as older kernels do). Fixed IRQs answer EIO always.
    """
    spec = load_spec(name)
    if shape is not None:
        spec = reshape(spec, shape)
    host = make_host(kernel, nodes=len(spec['nodes']), files=tree_files(spec, overrides))
    install_irqs(host, spec, managed)
    kernel_side = IrqKernel(host, spec)
    host.kernel.handlers.update({
        '/smp_affinity_list': kernel_side.irq_affinity,
        '/proc/irq/default_smp_affinity': kernel_side.default_affinity,
        '/sys/devices/virtual/workqueue/cpumask': kernel_side.workqueue_mask,
    })
    host.irq_spec = spec
    return host
