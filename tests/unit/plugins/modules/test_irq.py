# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import subprocess

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _irq
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import PERSIST_NONE, PERSIST_TMPFILES
from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup
from ansible_collections.aitune.kernel.plugins.module_utils._persist import owned_file_kind
from ansible_collections.aitune.kernel.plugins.modules import irq as irq_module, restore
from ansible_collections.aitune.kernel.tests.unit.irqtree import irq_host
from ansible_collections.aitune.kernel.tests.unit.fakesystemd import RecordingSystemctl, use_systemd
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

STATE = ('/var/lib/aitune',)
# Which CPU of an affinity the kernel delivers to is its own choice each time the affinity is written, so restoring
# an affinity need not bring back the same effective CPU.
EFFECTIVE = tuple('/proc/irq/%d/%s' % (irq, leaf) for irq in (0, 1, 11, 24, 25, 26, 27, 28, 29, 30, 31, 32)
                  for leaf in ('effective_affinity', 'effective_affinity_list'))
TMPFILES = '/etc/tmpfiles.d/aitune.conf'
DEBIAN_FILE = '/etc/default/irqbalance'
RHEL_FILE = '/etc/sysconfig/irqbalance'
UNIT = '/etc/systemd/system/aitune-irq-affinity.service'
# Movable IRQs of the fixture that nvme* and mlx5* match, and the managed ones they match too.
MOVABLE = ('24', '30', '31')
MANAGED = ('25', '26')
# The knob of each IRQ of fixtures/trees/irq_numa2.yml and irq_small.yml: named after its actions, not its number.
NUMA2 = {'0': 'irq.timer.affinity', '24': 'irq.nvme0q0.affinity', '25': 'irq.nvme0q1.affinity',
         '26': 'irq.nvme0q2.affinity', '30': 'irq.mlx5_async0@pci:0000:3b:00.2.affinity',
         '31': 'irq.mlx5_comp0@pci:0000:3b:00.2.affinity'}
SMALL = {24: 'irq.virtio0-config.affinity', 25: 'irq.virtio0-input.0.affinity', 26: 'irq.virtio0-output.0.affinity',
         27: 'irq.nvme0q0.affinity', 28: 'irq.nvme0q1.affinity', 29: 'irq.nvme0q2.affinity'}
# Debian bookworm's /etc/default/irqbalance, shortened.
DEBIAN_STOCK = """# irqbalance is a daemon process that distributes interrupts across
# CPUs on SMP systems.  The default is to rebalance once every 10
# seconds.  This is the environment file that is specified to systemd via the
# EnvironmentFile key in the service unit file.
#
#IRQBALANCE_ONESHOT=

#
# IRQBALANCE_BANNED_CPULIST
# The CPUs listed here will not have any irq's assigned to them on rebalance
#
#IRQBALANCE_BANNED_CPULIST=

#IRQBALANCE_ARGS=
"""

BAD_INPUT = load_cases('irq_bad_input.yml')


def affinity(host, irq):
    return host.value('/proc/irq/%s/smp_affinity_list' % irq)


def steer(host, check_mode=False, diff=False, **args):
    args.setdefault('devices', ['nvme*', 'mlx5*'])
    return run_module(irq_module, dict(args, root=host.root), check_mode=check_mode, diff=diff)


@pytest.fixture
def with_systemd(monkeypatch):
    """Make the modules see systemd as PID 1 on the fake host (what open_engine does on a real root)."""

    def install(host):
        systemctl = RecordingSystemctl(host)
        use_systemd(monkeypatch, systemctl)
        return systemctl
    return install


@pytest.mark.parametrize('managed', ['readonly', 'eio'])
def test_steers_matched_irqs_reads_back_and_restores(make_host, managed):
    host = irq_host(make_host, managed=managed)
    original = host.snapshot(ignore=STATE + EFFECTIVE)
    code, result = steer(host)
    assert code == 0, result
    assert result['changed'] is True
    assert result['housekeeping_cpus'] == '0,4' and result['latency_cpus'] == '1-3,5-7'
    assert result['applied'] == sorted(NUMA2[irq] for irq in MOVABLE)
    for irq in MOVABLE:
        assert affinity(host, irq) == '0,4'
        assert result['irqs'][irq]['before'] == '0-7' and result['irqs'][irq]['after'] == '0,4'
        assert result['irqs'][irq]['knob'] == NUMA2[irq]
        assert result['irqs'][irq]['effective'] == '0'
    assert result['irqs']['30']['devices'] == ['mlx5_async0@pci:0000:3b:00.2']
    # Managed IRQs keep their spread, and say why.
    assert sorted(result['not_permitted']) == [NUMA2[irq] for irq in MANAGED]
    for irq in MANAGED:
        assert result['not_permitted'][NUMA2[irq]].startswith('kernel-managed IRQ')
        assert result['irqs'][irq]['state'] == 'not_permitted'
    assert affinity(host, 25) == '0-3' and affinity(host, 26) == '4-7'
    # IRQs of other devices, and the default affinity, are left alone.
    assert affinity(host, 1) == '0-7' and affinity(host, 28) == '0-7'
    assert host.value('/proc/irq/default_smp_affinity') == 'ff'
    # No irqbalance, no systemd: nothing brings the affinity back at boot, and no file was written for it.
    assert result['persistence'] == 'none' and result['persistent'] is False
    assert result['files'] == []

    code, again = steer(host)
    assert code == 0 and again['changed'] is False, again
    code, undone = run_module(restore, {'root': host.root, 'scope': 'irq'})
    assert code == 0 and undone['changed'] is True, undone
    assert host.snapshot(ignore=STATE + EFFECTIVE) == original


def test_eio_from_the_kernel_is_not_permitted_not_a_crash(make_host):
    host = irq_host(make_host, managed='eio')
    code, result = steer(host, devices=['nvme0q2', 'timer'])
    assert code == 0, result
    assert result['applied'] == []
    assert 'Input/output error' in result['not_permitted'][NUMA2['26']]
    assert 'IRQF_NOBALANCING' in result['not_permitted'][NUMA2['0']]
    # The kernel was asked, and refused.
    assert ('/proc/irq/26/smp_affinity_list', '0,4') in host.kernel.writes
    assert affinity(host, 26) == '4-7' and affinity(host, 0) == '0-7'


def test_check_mode_with_diff_changes_nothing(make_host):
    host = irq_host(make_host, managed='eio')
    before = host.snapshot()
    code, result = steer(host, check_mode=True, diff=True, default_affinity=True, workqueue=True)
    assert code == 0, result
    assert result['changed'] is True
    assert host.snapshot() == before and host.kernel.writes == []
    assert result['irqs']['24'] == {'devices': ['nvme0q0'], 'knob': 'irq.nvme0q0.affinity', 'before': '0-7',
                                    'after': '0,4', 'state': 'applied', 'effective': '3'}
    assert result['files'] == [TMPFILES]
    live = result['diff'][0]
    assert 'irq.nvme0q0.affinity: 0-7\n' in live['before'] and 'irq.nvme0q0.affinity: 0,4\n' in live['after']
    assert 'irq.default_affinity: 11\n' in live['after'] and 'workqueue.cpumask: 11\n' in live['after']


def test_default_affinity_and_workqueue_mask_persist_as_tmpfiles_lines(make_host):
    host = irq_host(make_host)
    original = host.snapshot(ignore=STATE + EFFECTIVE)
    code, result = steer(host, devices=[], default_affinity=True, workqueue=True)
    assert code == 0, result
    assert result['applied'] == ['irq.default_affinity', 'workqueue.cpumask']
    assert host.value('/proc/irq/default_smp_affinity') == '11'
    assert host.value('/sys/devices/virtual/workqueue/cpumask') == '11'
    tmpfiles = host.read(TMPFILES)
    assert 'w /proc/irq/default_smp_affinity - - - - 11\n' in tmpfiles
    assert 'w /sys/devices/virtual/workqueue/cpumask - - - - 11\n' in tmpfiles
    assert result['persistent'] is True and result['irqs'] == {}
    assert steer(host, devices=[], default_affinity=True, workqueue=True)[1]['changed'] is False
    run_module(restore, {'root': host.root, 'scope': 'irq'})
    assert host.snapshot(ignore=STATE + EFFECTIVE) == original


def test_masks_on_a_40_cpu_kernel_keep_the_kernels_layout(make_host):
    host = irq_host(make_host, name='irq_wide', overrides={DEBIAN_FILE: DEBIAN_STOCK})
    assert host.value('/proc/irq/default_smp_affinity') == 'ff,ffffffff'
    code, result = steer(host, devices=['nvme*', 'mlx5_comp*'], default_affinity=True, workqueue=True)
    assert code == 0, result
    assert result['housekeeping_cpus'] == '0,20'
    assert host.value('/proc/irq/default_smp_affinity') == '00,00100001'
    assert host.value('/sys/devices/virtual/workqueue/cpumask') == '00,00100001'
    assert affinity(host, 90) == '0,20'
    banned = host.read(DEBIAN_FILE)
    assert 'IRQBALANCE_BANNED_CPULIST=1-19,21-39\n' in banned
    assert 'IRQBALANCE_BANNED_CPUS=ff,ffeffffe\n' in banned
    assert steer(host, devices=['nvme*', 'mlx5_comp*'], default_affinity=True, workqueue=True)[1]['changed'] is False


def test_irqbalance_debian_bans_the_latency_cpus_and_restore_puts_the_file_back(make_host, with_systemd):
    host = irq_host(make_host, overrides={DEBIAN_FILE: DEBIAN_STOCK + 'IRQBALANCE_BANNED_CPUS=00000001\n'})
    systemctl = with_systemd(host)
    original = host.snapshot(ignore=STATE + EFFECTIVE)
    code, result = steer(host)
    assert code == 0, result
    assert result['persistence'] == 'irqbalance' and result['persistent'] is True
    assert result['files'] == [DEBIAN_FILE]
    text = host.read(DEBIAN_FILE)
    # The stock comments stay; the existing mask line is replaced where it stood; the list is added once.
    assert text.startswith(DEBIAN_STOCK)
    assert text.count('IRQBALANCE_BANNED_CPUS=') == 1 and 'IRQBALANCE_BANNED_CPUS=ee\n' in text
    assert text.count('\nIRQBALANCE_BANNED_CPULIST=') == 1 and text.endswith('IRQBALANCE_BANNED_CPULIST=1-3,5-7\n')
    assert systemctl.calls == [('try-restart', 'irqbalance.service')]
    assert result['actions'] == ['systemctl try-restart irqbalance.service']

    code, again = steer(host)
    assert code == 0 and again['changed'] is False, again
    code, undone = run_module(restore, {'root': host.root, 'scope': 'irq'})
    assert code == 0 and undone['changed'] is True
    assert systemctl.calls[-1] == ('try-restart', 'irqbalance.service')
    assert host.snapshot(ignore=STATE + EFFECTIVE) == original


class IrqbalanceMovingIrq(RecordingSystemctl):
    """An irqbalance that, by the time it restarts, has moved IRQ 24 back to ``moved_to``: the old daemon rebalanced
    between the run's write and the restart. ``every_time``: it keeps doing so, as a daemon the run cannot ban."""

    def __init__(self, host, moved_to, every_time=False):
        super(IrqbalanceMovingIrq, self).__init__(host)
        self.moved_to = moved_to
        self.every_time = every_time
        self.moves = 0

    def try_restart(self, unit):
        super(IrqbalanceMovingIrq, self).try_restart(unit)
        self.moves += 1
        self.host.write('/proc/irq/24/smp_affinity_list', self.moved_to + '\n')
        if self.every_time:
            # From now on the kernel file keeps the daemon's value: every later write of the run is undone.
            self.host.kernel.keep.add('/proc/irq/24/smp_affinity_list')


def test_an_irq_moved_before_irqbalance_restarted_is_steered_again(make_host, monkeypatch):
    host = irq_host(make_host, overrides={DEBIAN_FILE: DEBIAN_STOCK})
    irqbalance = IrqbalanceMovingIrq(host, moved_to='1')
    use_systemd(monkeypatch, irqbalance)
    code, result = steer(host)
    assert code == 0, result
    assert irqbalance.moves == 1
    # Read once more after the restart, written again: the run ends with what it reports, and a second run is idle.
    assert affinity(host, 24) == '0,4'
    assert NUMA2['24'] in result['applied'] and NUMA2['24'] not in result['not_permitted']
    code, again = steer(host)
    assert code == 0 and again['changed'] is False, again


def test_an_irq_irqbalance_keeps_moving_is_not_permitted_and_says_so(make_host, monkeypatch):
    host = irq_host(make_host, overrides={DEBIAN_FILE: DEBIAN_STOCK})
    use_systemd(monkeypatch, IrqbalanceMovingIrq(host, moved_to='1', every_time=True))
    code, result = steer(host)
    assert code == 0, result
    assert affinity(host, 24) == '1'
    reason = result['not_permitted'][NUMA2['24']]
    assert "changed to '1' once the files acted (systemctl try-restart irqbalance.service)" in reason, reason
    assert NUMA2['24'] not in result['applied']


def test_irqbalance_also_bans_isolated_and_nohz_full_cpus(make_host):
    host = irq_host(make_host, overrides={DEBIAN_FILE: DEBIAN_STOCK,
                                          '/sys/devices/system/cpu/isolated': '3\n',
                                          '/sys/devices/system/cpu/nohz_full': '2-3\n'})
    code, result = steer(host, housekeeping_cpus='0-3,4')
    assert code == 0, result
    assert result['latency_cpus'] == '5-7'
    assert 'IRQBALANCE_BANNED_CPULIST=2-3,5-7\n' in host.read(DEBIAN_FILE)


def test_irqbalance_binary_only_on_rhel_creates_the_sysconfig_file(make_host):
    host = irq_host(make_host, overrides={'/usr/sbin/irqbalance': '', '/etc/sysconfig/network': ''})
    original = host.snapshot(ignore=STATE + EFFECTIVE)
    code, result = steer(host)
    assert code == 0, result
    assert result['persistence'] == 'irqbalance' and result['files'] == [RHEL_FILE]
    assert host.read(RHEL_FILE).endswith('IRQBALANCE_BANNED_CPULIST=1-3,5-7\nIRQBALANCE_BANNED_CPUS=ee\n')
    assert owned_file_kind(RHEL_FILE) == 'irqbalance'
    run_module(restore, {'root': host.root, 'scope': 'irq'})
    assert not host.exists(RHEL_FILE)
    assert host.snapshot(ignore=STATE + EFFECTIVE) == original


def test_irqbalance_file_follows_the_units_environment_file(make_host):
    unit = '[Service]\nEnvironmentFile=-/etc/sysconfig/irqbalance\nExecStart=/usr/sbin/irqbalance --foreground\n'
    host = irq_host(make_host, overrides={'/usr/sbin/irqbalance': '', '/etc/debian_version': '12.7\n',
                                          '/usr/lib/systemd/system/irqbalance.service': unit,
                                          '/etc/sysconfig/network': ''})
    code, result = steer(host)
    assert code == 0 and result['files'] == [RHEL_FILE], result


def test_fewer_devices_take_the_persistence_back_out(make_host):
    host = irq_host(make_host, overrides={DEBIAN_FILE: DEBIAN_STOCK})
    assert steer(host)[1]['files'] == [DEBIAN_FILE]
    code, result = steer(host, devices=[])
    assert code == 0, result
    assert result['files'] == [DEBIAN_FILE] and result['persistence'] == 'none'
    assert host.read(DEBIAN_FILE) == DEBIAN_STOCK
    # The live affinity stays until restore.
    assert affinity(host, 24) == '0,4'


def test_persist_false_writes_no_file(make_host):
    host = irq_host(make_host, overrides={DEBIAN_FILE: DEBIAN_STOCK})
    code, result = steer(host, persist=False, default_affinity=True)
    assert code == 0, result
    assert result['files'] == [] and result['persistent'] is False
    assert host.read(DEBIAN_FILE) == DEBIAN_STOCK and not host.exists(TMPFILES)
    assert affinity(host, 24) == '0,4'


def test_boot_unit_without_irqbalance_and_its_script_reapplies(make_host, with_systemd):
    host = irq_host(make_host)
    systemctl = with_systemd(host)
    original = host.snapshot(ignore=STATE + EFFECTIVE)
    code, result = steer(host)
    assert code == 0, result
    assert result['persistence'] == 'unit' and result['persistent'] is True
    assert result['files'] == [UNIT]
    assert systemctl.calls == [('daemon-reload',), ('start', 'aitune-irq-affinity.service', True)]
    content = host.read(UNIT)
    assert 'Type=oneshot\n' in content and 'WantedBy=multi-user.target\n' in content
    # Drivers that udev loads at boot have requested their IRQs before the script runs.
    assert 'After=systemd-modules-load.service systemd-udev-trigger.service local-fs.target\n' in content
    assert 'ExecStartPre=-/bin/udevadm settle --timeout=60\n' in content
    exec_line = re.search(r'^ExecStart=/bin/sh -c "(.*)"$', content, re.M).group(1)
    # systemd's own expansions are escaped: $$ and %% stand for $ and %.
    assert '$$' in exec_line and '%%' in exec_line and not re.search(r'(?<![$])\$(?![$])', exec_line.replace('$$', ''))
    script = exec_line.replace('$$', '$').replace('%%', '%')

    # What a reboot does: the affinities are back at the kernel's defaults, then the unit runs.
    for irq in MOVABLE:
        host.write('/proc/irq/%s/smp_affinity_list' % irq, '0-7\n')
    fake_script = script.replace('/proc/irq/', host.root + '/proc/irq/')
    subprocess.run(['/bin/sh', '-c', fake_script], check=True, stderr=subprocess.PIPE)
    for irq in MOVABLE + MANAGED:
        assert affinity(host, irq) == '0,4'
    assert affinity(host, 28) == '0-7' and affinity(host, 1) == '0-7'
    # A real kernel refuses the managed ones (the loop goes on); the files of this tree cannot, so put them back.
    host.write('/proc/irq/25/smp_affinity_list', '0-3\n')
    host.write('/proc/irq/26/smp_affinity_list', '4-7\n')

    code, undone = run_module(restore, {'root': host.root, 'scope': 'irq'})
    assert code == 0, undone
    assert systemctl.calls[2:] == [('stop', 'aitune-irq-affinity.service', True), ('daemon-reload',)]
    assert host.snapshot(ignore=STATE + EFFECTIVE) == original


def test_override_steers_away_from_the_numa_first_cpus(make_host):
    host = irq_host(make_host)
    code, result = steer(host, housekeeping_cpus='1-3', allow_housekeeping_cpus=True)
    assert code == 0, result
    assert result['latency_cpus'] == '0,4-7'
    assert affinity(host, 24) == '1-3'


def test_no_matching_device_warns_and_changes_nothing(make_host):
    host = irq_host(make_host)
    before = host.snapshot(ignore=STATE)
    code, result = steer(host, devices=['ixgbe*'])
    assert code == 0, result
    assert result['changed'] is False and result['irqs'] == {}
    # The warning's shape differs between ansible-core versions; its text does not.
    assert 'devices ixgbe* matched no IRQ' in str(result['warnings'])
    assert host.snapshot(ignore=STATE) == before and host.kernel.writes == []


def test_strict_mode_refuses_managed_irqs_before_writing(make_host):
    host = irq_host(make_host, managed='readonly')
    before = host.snapshot()
    code, result = steer(host, strict=True)
    assert code == 1
    assert 'strict mode, nothing was changed' in result['msg'] and NUMA2['25'] in result['msg']
    assert host.snapshot() == before


@pytest.mark.parametrize('case', BAD_INPUT, ids=[c['id'] for c in BAD_INPUT])
def test_bad_input_fails_clearly_and_writes_nothing(make_host, case):
    host = irq_host(make_host, overrides={DEBIAN_FILE: DEBIAN_STOCK})
    before = host.snapshot()
    code, result = run_module(irq_module, dict(case['args'], root=host.root))
    assert code == 1, result
    for word in case['words']:
        assert word in result['msg']
    assert host.snapshot() == before and host.kernel.writes == []


@pytest.mark.parametrize('name, path, persist', [
    ('irq.24.affinity', '/proc/irq/24/smp_affinity_list', PERSIST_NONE),
    ('irq.0.affinity', '/proc/irq/0/smp_affinity_list', PERSIST_NONE),
    ('irq.default_affinity', '/proc/irq/default_smp_affinity', PERSIST_TMPFILES),
    ('workqueue.cpumask', '/sys/devices/virtual/workqueue/cpumask', PERSIST_TMPFILES),
])
def test_knob_names_alone_rebuild_the_knobs(name, path, persist):
    knob = lookup(name)
    assert knob.name == name and knob.subsystem == 'irq'
    assert [loc.path for loc in knob.locations] == [path] and knob.persist == persist


@pytest.mark.parametrize('name, value, raw, expected', [
    ('irq.24.affinity', '0,1,2,3,8', None, '0-3,8'),
    ('irq.24.affinity', [4, 0], None, '0,4'),
    ('irq.default_affinity', '11', 'ff\n', '11'),
    ('irq.default_affinity', '00000011', 'ff\n', '11'),
    ('irq.default_affinity', '1', 'ff,ffffffff\n', '00,00000001'),
    ('workqueue.cpumask', '3', '3\n', '3'),
])
def test_knob_values_compare_in_the_kernels_form(name, value, raw, expected):
    assert lookup(name).canonical(value, raw) == expected
    assert lookup(name).current(expected + '\n') == expected


SMALL_GUEST_REASON = ('no CPU left for the latency set: this host has 2 CPUs (0-1), both housekeeping (CPU 0 of each '
                      'of its 2 NUMA nodes)')


@pytest.mark.parametrize('housekeeping, words', [
    # The default, CPU 0 of each node, is every CPU of the small guest; so is the batch set of its partition.
    (None, [SMALL_GUEST_REASON]),
    ('@batch_cpus', [SMALL_GUEST_REASON]),
    ('0-1', ['housekeeping_cpus 0-1 is every online CPU', 'no CPU is left to steer']),
])
def test_nothing_to_steer_away_from_is_unsupported_and_writes_nothing(make_host, with_systemd, housekeeping, words):
    """2 NUMA nodes of one CPU each (fixtures/trees/irq_small.yml): steering onto every CPU would only rewrite
    affinities to no purpose, so each setting the run would make is unsupported, with the reason."""
    host = irq_host(make_host, name='irq_small', overrides={DEBIAN_FILE: DEBIAN_STOCK})
    with_systemd(host)
    before = host.snapshot()
    args = dict(devices=['nvme*', 'virtio*'], default_affinity=True, workqueue=True)
    if housekeeping is not None:
        args['housekeeping_cpus'] = housekeeping
    code, result = steer(host, **args)
    assert code == 0, result
    assert result['changed'] is False and result['applied'] == [] and result['files'] == []
    assert sorted(result['unsupported']) == sorted(list(SMALL.values()) + ['irq.default_affinity', 'workqueue.cpumask'])
    for reason in result['unsupported'].values():
        for word in words:
            assert word in reason
    assert result['latency_cpus'] == '' and result['persistent'] is False
    assert result['irqs']['27']['state'] == 'unsupported'
    assert host.snapshot() == before and host.kernel.writes == []

    code, strict = steer(host, strict=True, **args)
    assert code == 1 and strict['msg'].startswith('strict mode, nothing was changed: irq.default_affinity is unsupported')
    assert host.snapshot() == before


@pytest.mark.parametrize('name, value, raw, words', [
    ('irq.24.affinity', '', None, ['empty']),
    ('irq.24.affinity', 'x', None, ['not a CPU list']),
    ('irq.default_affinity', '0', 'ff\n', ['empty']),
    ('irq.default_affinity', '100', 'ff\n', ['CPU 8 is beyond']),
    ('workqueue.cpumask', '0-3', '3\n', ['not a CPU mask']),
])
def test_knob_values_refused(name, value, raw, words):
    with pytest.raises(ValueError) as caught:
        lookup(name).canonical(value, raw)
    for word in words + [name]:
        assert word in str(caught.value)


@pytest.mark.parametrize('name', ['irq.24', 'irq.24.affinity.extra', 'workqueue.mask', 'irq.123456.affinity',
                                  'irq.PCIe PME.affinity', 'irq.a/b.affinity', 'irq..affinity', 'irq.a..b.affinity',
                                  'irq.-x.affinity', 'irq.a~b~c.affinity', 'irq.a~b#x.affinity', 'irq.a,,b.affinity',
                                  'irq.%s.affinity' % ('x' * 65)])
def test_unknown_irq_knob_names_are_refused(name):
    with pytest.raises(ValueError):
        lookup(name)


def test_irqbalance_content_keeps_the_file_and_drops_a_later_duplicate():
    original = ('IRQBALANCE_ARGS="--journal"\nexport IRQBALANCE_BANNED_CPULIST=7\n#IRQBALANCE_BANNED_CPUS=1\n'
                'IRQBALANCE_BANNED_CPULIST=6\n')
    text = _irq.irqbalance_content(original, {1, 2, 3}, 8)
    assert text == ('IRQBALANCE_ARGS="--journal"\nIRQBALANCE_BANNED_CPULIST=1-3\n#IRQBALANCE_BANNED_CPUS=1\n'
                    '# Set by aitune.kernel.irq_affinity: the latency CPUs, where irqbalance puts no IRQ. '
                    'aitune.kernel.restore puts the original file back.\nIRQBALANCE_BANNED_CPUS=0e\n')
