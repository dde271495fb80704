# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _block
from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_block import block_knob
from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup
from ansible_collections.aitune.kernel.tests.unit.blocktree import ElevatorEffects, build_block_devices
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

NVME0N1 = '/sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1'
SDA = '/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda'
VDA = '/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda'
NOT_STATE = ('/var/lib/aitune',)


SELECTION = load_cases('block_selection.yml')
RULES = load_cases('block_rules.yml')


@pytest.fixture
def block_host(make_host):
    def factory(kernel='6.18', **kwargs):
        host = make_host(kernel)
        build_block_devices(host, **kwargs)
        return host
    return factory


def _rules(entries):
    return [{'match': entry['match'], 'settings': entry.get('settings', {})} for entry in entries]


@pytest.mark.parametrize('case', SELECTION, ids=[c['id'] for c in SELECTION])
def test_selection(block_host, case):
    host = block_host()
    disks, partitions = _block.discover(HostFS(host.root))
    selected, skipped = _block.select(_rules(case['rules']), disks, partitions)
    assert {device.name: hits for device, hits in selected} == case['selected']
    assert sorted(skipped) == sorted(case['skipped'])
    for name, words in case['skipped'].items():
        for word in words:
            assert word in skipped[name]


def test_discovery_resolves_links_and_reads_the_parent(block_host):
    host = block_host()
    assert os.path.islink(host.path('/sys/block/nvme0n1'))
    disks, partitions = _block.discover(HostFS(host.root))
    facts = {disk.name: disk.facts([]) for disk in disks}
    assert facts['nvme0n1'] == {'entries': [], 'transport': 'nvme', 'model': 'Samsung SSD 980 PRO 1TB',
                                'rotational': False, 'sysfs': NVME0N1}
    assert facts['sda']['transport'] == 'scsi' and facts['sda']['rotational'] is True and facts['sda']['sysfs'] == SDA
    assert facts['vda']['transport'] == 'virtio' and facts['vda']['model'] is None
    assert facts['loop0']['transport'] is None
    assert {disk.name for disk in disks if disk.virtual} == {'dm-0', 'loop0', 'zram0'}
    assert {(p.name, p.partition_of) for p in partitions} == {('nvme0n1p1', 'nvme0n1'), ('sda1', 'sda')}


def test_a_link_out_of_sys_devices_is_skipped(block_host):
    host = block_host()
    os.makedirs(host.path('/etc/evil/queue'))
    os.symlink('../../etc/evil', host.path('/sys/block/sdx'))
    disks, dummy = _block.discover(HostFS(host.root))
    sdx = [disk for disk in disks if disk.name == 'sdx'][0]
    assert sdx.sysfs is None and 'not into /sys/devices' in sdx.skip_reason
    selected, skipped = _block.select(_rules([{'match': {'name': 'sd*'}}]), disks, [])
    assert [device.name for device, dummy in selected] == ['sda'] and 'not into /sys/devices' in skipped['sdx']


@pytest.mark.parametrize('case', RULES, ids=[c['id'] for c in RULES])
def test_rules_file(case):
    text = _block.render_rules(_rules(case['rules']), tuple(case['kernel']))
    if case.get('none'):
        assert text is None
        return
    assert text.startswith('# Managed by aitune.kernel')
    lines = text.splitlines()
    positions = [lines.index(line) for line in case['lines']]
    assert positions == sorted(positions)
    for word in case.get('absent') or []:
        assert word not in text


def test_knob_family_rebuilds_from_the_name_alone():
    knob = lookup('block.nvme0n1.elevator')
    assert knob.subsystem == 'block' and knob.persist is None
    assert knob.locations[0].path == '/sys/block/nvme0n1/queue/scheduler'
    assert knob.validator.current('[none] mq-deadline kyber bfq\n') == 'none'
    # As the kernel prints it, with a trailing space.
    assert knob.validator.current('none [mq-deadline] kyber bfq \n') == 'mq-deadline'
    assert knob.validator.offered('none [mq-deadline] kyber bfq \n') == ['none', 'mq-deadline', 'kyber', 'bfq']
    assert lookup('block.dm-0.read_ahead_kb').locations[0].path == '/sys/block/dm-0/queue/read_ahead_kb'
    # The plan builds a device's knobs at its resolved directory and hands them to the engine with the values; the
    # registry's knob of the same name keeps the nominal path, whatever a plan built meanwhile.
    assert block_knob('nvme0n1', 'nomerges', NVME0N1).locations[0].path == NVME0N1 + '/queue/nomerges'
    assert lookup('block.nvme0n1.nomerges').locations[0].path == '/sys/block/nvme0n1/queue/nomerges'


@pytest.mark.parametrize('name', ['block.nvme0n1.scheduler', 'block.Sda.nomerges', 'block.sda.queue',
                                  'block.../nomerges', 'block.0sda.nomerges'])
def test_knob_family_refuses_other_names(name):
    with pytest.raises(ValidationError):
        lookup(name)


def test_sys_block_links_cannot_be_walked(block_host):
    # Why knobs point at the resolved /sys/devices path: HostFS refuses the symlink that /sys/block/<dev> is.
    host = block_host()
    with Engine(root=host.root) as engine:
        with pytest.raises(EngineError, match='symlink'):
            engine.probe(lookup('block.nvme0n1.nomerges'))


def test_apply_writes_the_resolved_files_only(block_host):
    host = block_host()
    before = host.snapshot(ignore=NOT_STATE)
    with Engine(root=host.root) as engine:
        report, plan = _block.apply(engine, [{'match': {'name': 'nvme0n1'}, 'nomerges': 2, 'read_ahead_kb': 4096}])
    after = host.snapshot(ignore=NOT_STATE)
    changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
    assert changed == [_block.RULES_PATH, NVME0N1 + '/queue/nomerges', NVME0N1 + '/queue/read_ahead_kb']
    assert report.knobs['block.nvme0n1.nomerges']['path'] == NVME0N1 + '/queue/nomerges'
    assert host.value('/sys/block/nvme0n1/queue/nomerges') == '2'
    assert plan.devices()['nvme0n1']['entries'] == [0]
    # The links are still links.
    assert os.path.islink(host.path('/sys/block/nvme0n1'))


def test_scheduler_goes_first_on_apply_and_restore(block_host, monkeypatch):
    host = block_host()
    effects = ElevatorEffects(host)
    effects.install(monkeypatch.setattr)
    original = host.snapshot(ignore=NOT_STATE)
    with Engine(root=host.root) as engine:
        report, dummy = _block.apply(engine, [{'match': {'name': 'nvme0n1'}, 'scheduler': 'mq-deadline',
                                               'nr_requests': 64}])
    assert report.by_state()['applied'] == ['block.nvme0n1.elevator', 'block.nvme0n1.nr_requests']
    # The switch reset nr_requests to 256; the value asked for was written after it.
    assert effects.switches == [(NVME0N1, 'mq-deadline')]
    assert host.read(NVME0N1 + '/queue/scheduler') == 'none [mq-deadline] kyber bfq\n'
    assert host.value(NVME0N1 + '/queue/nr_requests') == '64'
    with Engine(root=host.root) as engine:
        restored = engine.restore('block')
    assert restored.by_state()['applied'] == ['block.nvme0n1.elevator', 'block.nvme0n1.nr_requests']
    assert host.value(NVME0N1 + '/queue/nr_requests') == '1023'
    assert host.snapshot(ignore=NOT_STATE) == original


class RecordingUdevadm(object):
    """Stands in for udevadm, which the fake tree does not run; records each call and whether the rules existed."""

    def __init__(self, host):
        self.host = host
        self.calls = []

    def reload_and_trigger(self, subsystem):
        self.calls.append((subsystem, self.host.exists(_block.RULES_PATH)))


def test_udev_reloads_and_replays_block_devices(block_host):
    host = block_host()
    udevadm = RecordingUdevadm(host)
    entries = [{'match': {'transport': 'virtio'}, 'scheduler': 'none'}]
    with Engine(root=host.root, udevadm=udevadm) as engine:
        report, dummy = _block.apply(engine, entries)
    assert report.actions == ['udevadm trigger --subsystem-match=block']
    assert udevadm.calls == [('block', True)]
    assert 'DRIVERS=="virtio_blk", ATTR{queue/scheduler}="none"' in host.read(_block.RULES_PATH)
    with Engine(root=host.root, udevadm=udevadm) as engine:
        again, dummy = _block.apply(engine, entries)
        assert again.changed is False and again.actions == []
        engine.restore('block')
    # The restore removes the file, then tells udev too.
    assert udevadm.calls[1:] == [('block', False)]
    assert not host.exists(_block.RULES_PATH)


def test_drift_reads_the_resolved_path(block_host):
    host = block_host()
    with Engine(root=host.root) as engine:
        _block.apply(engine, [{'match': {'name': 'sda'}, 'read_ahead_kb': 1024}])
    host.write(SDA + '/queue/read_ahead_kb', '128\n')
    with Engine(root=host.root) as engine:
        assert engine.drift() == {'block.sda.read_ahead_kb': {'desired': '1024', 'live': '128'}}


def test_io_poll_writes_ignored_since_5_15_are_not_made(block_host):
    host = block_host(writable=('io_poll',))
    with Engine(root=host.root) as engine:
        report, plan = _block.apply(engine, [{'match': {'name': 'nvme0n1'}, 'io_poll': True, 'nomerges': 1}])
    entry = report.knobs['block.nvme0n1.io_poll']
    assert entry['state'] == 'not_permitted' and '5.15' in entry['reason'] and entry['value'] == '0'
    assert not [path for path, dummy in host.kernel.writes if path.endswith('/io_poll')]
    assert 'io_poll left out' in plan.rules and 'ATTR{queue/io_poll}' not in plan.rules
    # Asking for what it already reads is applied, with no write.
    with Engine(root=host.root) as engine:
        report, dummy = _block.apply(engine, [{'match': {'name': 'nvme0n1'}, 'io_poll': False}])
    assert report.knobs['block.nvme0n1.io_poll']['state'] == 'applied'


def test_io_poll_read_only_is_not_permitted(block_host):
    host = block_host()
    with Engine(root=host.root) as engine:
        report, dummy = _block.apply(engine, [{'match': {'name': 'nvme0n2'}, 'io_poll': True}])
    assert report.knobs['block.nvme0n2.io_poll']['state'] == 'not_permitted'
    assert 'read-only' in report.knobs['block.nvme0n2.io_poll']['reason']


def test_io_poll_on_5_10_is_written_and_persisted(block_host):
    host = block_host(kernel='5.10', writable=('io_poll',))
    with Engine(root=host.root) as engine:
        report, plan = _block.apply(engine, [{'match': {'name': 'nvme0n1'}, 'io_poll': True, 'io_poll_delay': 0}])
    assert report.by_state()['applied'] == ['block.nvme0n1.io_poll', 'block.nvme0n1.io_poll_delay']
    assert host.value(NVME0N1 + '/queue/io_poll') == '1' and host.value(NVME0N1 + '/queue/io_poll_delay') == '0'
    assert 'ATTR{queue/io_poll}="1", ATTR{queue/io_poll_delay}="0"' in plan.rules


def test_io_poll_delay_without_polling_on_5_10(block_host):
    host = block_host(kernel='5.10', writable=('io_poll',))
    with Engine(root=host.root) as engine:
        report, dummy = _block.apply(engine, [{'match': {'name': 'nvme0n1'}, 'io_poll_delay': 0}])
    assert report.knobs['block.nvme0n1.io_poll_delay']['state'] == 'not_permitted'
    assert 'polling is off' in report.knobs['block.nvme0n1.io_poll_delay']['reason']
    assert not host.kernel.writes


def test_io_poll_delay_after_hybrid_polling_was_removed(block_host):
    host = block_host(kernel='6.12')
    with Engine(root=host.root) as engine:
        report, dummy = _block.apply(engine, [{'match': {'name': 'sda'}, 'io_poll_delay': 0}])
    assert report.knobs['block.sda.io_poll_delay']['state'] == 'not_permitted'
    assert '6.4' in report.knobs['block.sda.io_poll_delay']['reason']
    assert not host.kernel.writes


def test_absent_settings_are_unsupported(block_host):
    host = block_host()
    with Engine(root=host.root) as engine:
        report, dummy = _block.apply(engine, [{'match': {'name': 'zram0'}, 'scheduler': 'none', 'read_ahead_kb': 512}])
    assert sorted(report.by_state()['unsupported']) == ['block.zram0.elevator']
    assert 'bio-based' in report.knobs['block.zram0.elevator']['reason']
    assert report.knobs['block.zram0.read_ahead_kb']['state'] == 'applied'


def test_a_queue_file_the_kernel_will_not_show_is_unsupported(block_host, monkeypatch):
    host = block_host()
    real_read = os.read
    wbt = host.path(SDA + '/queue/wbt_lat_usec')

    # The kernel answers EINVAL to a read of wbt_lat_usec on a queue without writeback throttling.
    def read(fd, size):
        if os.readlink('/proc/self/fd/%d' % fd) == wbt:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_read(fd, size)

    monkeypatch.setattr(os, 'read', read)
    with Engine(root=host.root) as engine:
        report, dummy = _block.apply(engine, [{'match': {'name': 'sda'}, 'wbt_lat_usec': 0, 'nomerges': 1}])
    assert report.knobs['block.sda.wbt_lat_usec']['state'] == 'unsupported'
    assert report.knobs['block.sda.nomerges']['state'] == 'applied'


def test_later_rules_win(block_host):
    host = block_host()
    entries = [{'match': {'name': '*'}, 'read_ahead_kb': 256}, {'match': {'transport': 'scsi'}, 'read_ahead_kb': 4096}]
    with Engine(root=host.root) as engine:
        report, plan = _block.apply(engine, entries)
    assert host.value(SDA + '/queue/read_ahead_kb') == '4096'
    assert host.value(VDA + '/queue/read_ahead_kb') == '256'
    assert plan.devices()['sda']['entries'] == [0, 1]
    lines = plan.rules.splitlines()
    assert lines.index('# devices[0]: name=*') < lines.index('# devices[1]: transport=scsi')


def test_check_entries_canonicalises():
    checked = _block.check_entries([{'match': {'rotational': False}, 'io_poll': 'yes', 'nomerges': '2',
                                     'scheduler': ' none '}])
    settings = {'io_poll': '1', 'nomerges': '2', 'scheduler': 'none'}
    assert checked == [{'match': {'rotational': False}, 'settings': settings}]
