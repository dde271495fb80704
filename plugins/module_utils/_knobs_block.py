# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The ``block.`` knob family: one queue setting of one block device (``block.<dev>.<setting>``). Part of the knob
registry (_registry.py); device selection, planning and the udev rules of aitune.kernel.block are in _block.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    PERSIST_NONE, Family, IntRange, KernelChoice, Knob, Location, Switch)

SYS_BLOCK = '/sys/block'


class Setting(object):
    """One queue setting: module option, knob leaf, file under queue/, validator, and what it does."""

    def __init__(self, option, leaf, filename, validator, description, absent_note=None):
        self.option = option
        self.leaf = leaf
        self.filename = filename
        self.validator = validator
        self.description = description
        self.absent_note = absent_note


SETTINGS = (
    Setting('scheduler', 'elevator', 'scheduler', KernelChoice(), 'I/O scheduler of the queue',
            'a bio-based queue (zram, bio-based dm, md) has no I/O scheduler'),
    Setting('nr_requests', 'nr_requests', 'nr_requests', IntRange(4, 65536), 'requests the queue may hold'),
    Setting('read_ahead_kb', 'read_ahead_kb', 'read_ahead_kb', IntRange(0, 2097152), 'read-ahead in KiB'),
    Setting('io_poll', 'io_poll', 'io_poll', Switch(), 'polled completions'),
    Setting('io_poll_delay', 'io_poll_delay', 'io_poll_delay', IntRange(-1, 1000000),
            'hybrid polling delay in microseconds (-1 classic polling, 0 adaptive)',
            'io_poll_delay came with hybrid polling in 4.10'),
    Setting('nomerges', 'nomerges', 'nomerges', IntRange(0, 2), 'request merging (0 all, 1 simple only, 2 none)'),
    Setting('rq_affinity', 'rq_affinity', 'rq_affinity', IntRange(0, 2),
            'completion CPU (0 any, 1 same group as the submitter, 2 the submitting CPU)'),
    Setting('wbt_lat_usec', 'wbt_lat_usec', 'wbt_lat_usec', IntRange(0, (1 << 31) - 1),
            'writeback throttling latency target in microseconds, 0 off', 'needs CONFIG_BLK_WBT'),
    Setting('max_sectors_kb', 'max_sectors_kb', 'max_sectors_kb', IntRange(4, (1 << 31) - 1),
            'largest request in KiB, at most max_hw_sectors_kb'),
)
SETTING_OPTIONS = tuple(setting.option for setting in SETTINGS)
SETTINGS_BY_LEAF = {setting.leaf: setting for setting in SETTINGS}
SETTINGS_BY_OPTION = {setting.option: setting for setting in SETTINGS}


def block_knob(dev, leaf, sysfs=None):
    """The knob for one queue setting of one device; ``sysfs`` is the device's resolved directory. Without it (a knob
    rebuilt from its name alone) the path is the nominal /sys/block one, which names the knob; restore and drift read
    and write the resolved path the baseline and the state recorded."""
    setting = SETTINGS_BY_LEAF[leaf]
    base = sysfs or '%s/%s' % (SYS_BLOCK, dev)
    return Knob('block.%s.%s' % (dev, leaf), setting.option, setting.validator,
                [Location('%s/queue/%s' % (base, setting.filename))], PERSIST_NONE,
                '%s of %s.' % (setting.description[0].upper() + setting.description[1:], dev),
                absent_note=setting.absent_note)


FAMILIES = (
    Family(r'block\.([a-z][a-z0-9_-]{0,31})\.(%s)' % '|'.join(sorted(SETTINGS_BY_LEAF)),
           lambda match: block_knob(match.group(1), match.group(2)), 'block.nvme0n1.elevator'),
)
