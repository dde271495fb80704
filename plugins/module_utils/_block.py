# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Block device queue settings: which disks a rule selects, the ``block.<dev>.<setting>`` knob family, and the udev
rules file that carries the rules to the next boot and to replaced disks.

Where the knobs live. ``/sys/block/<dev>`` is a symlink on every current kernel (``nvme0n1 ->
../devices/pci0000:00/.../nvme/nvme0/nvme0n1``), and HostFS refuses to walk through a symlink, so a knob path under
/sys/block could be neither read nor written. Each device is therefore resolved once with ``HostFS.realpath`` (which
keeps the result inside root) and must lead into /sys/devices; its knobs then point at the resolved
``/sys/devices/.../queue/<file>``, a path with no symlink on it. The baseline and the state record that resolved
path, so restore and drift, which rebuild a knob from its name alone, read and write the same file the apply did.
The plan carries each selected device's knobs, built at the resolved directory, and hands them to the engine with
the values; a knob rebuilt from its name alone has the nominal ``/sys/block/<dev>/queue/<file>``, which only names it.

Why the scheduler knob is ``block.<dev>.elevator``. Switching the I/O scheduler (the kernel calls it the elevator)
resets nr_requests and may turn writeback throttling on or off, so it must be written before the other settings of
its queue, on apply and on restore alike. The engine writes and restores knobs in name order, and ``elevator`` sorts
before every other setting name of a device.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch
import posixpath
import re
from string import Template

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import INVALID, FsError
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    KernelChoice, ValidationError, shown)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_block import (
    SETTINGS, SETTINGS_BY_OPTION, SETTING_OPTIONS, SYS_BLOCK, block_knob)
from ansible_collections.aitune.kernel.plugins.module_utils._report import APPLIED, NOT_PERMITTED_STATE, UNSUPPORTED
from ansible_collections.aitune.kernel.plugins.module_utils._run import knob_options, run_engine

RULES_PATH = '/etc/udev/rules.d/90-aitune-block.rules'
FILES_SUBSYSTEM = 'block'
UDEV_DIR = '/etc/udev'
NO_UDEV = 'udev is not installed here (no /etc/udev): the settings are live only and no rules file was written'
SYS_CLASS_BLOCK = '/sys/class/block'
VIRTUAL_BLOCK_DIR = '/sys/devices/virtual/block/'

# /sys/block names: nvme0n1, sda, vda, dm-0, md0, zram0, loop0, nvme0c0n1. DISK_NAME_LEN is 32.
DEVICE_NAME = re.compile(r'^[a-z][a-z0-9_-]{0,31}$')
# Globs that mean the same to fnmatch here and to udev's fnmatch(3) there: no '|' (udev alternation), no quotes.
NAME_GLOB = re.compile(r'^[A-Za-z0-9_*?!\[\]-]{1,64}$')
MODEL_GLOB = re.compile(r'^[A-Za-z0-9 _.,:;+=*?!()\[\]/#@&~^-]{1,64}$')
SCHEDULER_WORD = re.compile(r'^[a-z0-9_-]{1,32}$')
GLOB_CHARS = re.compile(r'[*?\[]')
TRANSPORTS = ('nvme', 'scsi', 'virtio')

# Kernel facts behind the settings that the kernel may ignore (block/blk-sysfs.c).
IO_POLL_IGNORED_SINCE = (5, 15)   # "block: don't allow writing to the poll queue attribute"
HYBRID_POLL_REMOVED_IN = (6, 4)   # "blk-mq: remove hybrid polling": io_poll_delay reads -1, writes are ignored


# -- devices ---------------------------------------------------------------------------------------------------------
_VIRTUAL_KINDS = (
    ('loop', 'loop device (a file seen as a disk)'),
    ('zram', 'zram device (compressed RAM)'),
    ('dm-', 'device-mapper device, stacked on the disks beneath it'),
    ('md', 'software RAID (md) device, stacked on the disks beneath it'),
)


class BlockDevice(object):
    """A disk of /sys/block (or, with ``partition_of``, a partition from /sys/class/block) and what selects it."""

    def __init__(self, name, sysfs=None, transport=None, model=None, rotational=None, skip_reason=None,
                 virtual=False, partition_of=None):
        self.name = name
        self.sysfs = sysfs
        self.transport = transport
        self.model = model
        self.rotational = rotational
        self.skip_reason = skip_reason
        # Virtual devices (loop, zram, dm, md, ...) are selected only by their exact name.
        self.virtual = virtual
        self.partition_of = partition_of

    def facts(self, entries):
        return {'entries': list(entries), 'transport': self.transport, 'model': self.model,
                'rotational': self.rotational, 'sysfs': self.sysfs}


def _link_name(fs, path):
    """The last component of where a sysfs link leads (a bus, class or driver name), or None."""
    if not fs.lexists(path):
        return None
    try:
        return posixpath.basename(fs.realpath(path))
    except FsError:
        return None


def _transport(fs, name, sysfs):
    """nvme, scsi or virtio, from the parent device as udev's SUBSYSTEMS and DRIVERS keys see it."""
    parent = sysfs + '/device'
    if fs.lexists(parent):
        subsystem = _link_name(fs, parent + '/subsystem')
        if subsystem in ('nvme', 'nvme-subsystem'):
            return 'nvme'
        if subsystem == 'scsi':
            return 'scsi'
        if _link_name(fs, parent + '/driver') == 'virtio_blk':
            return 'virtio'
        return None
    # No parent link (an unusual sysfs); the device path still tells the bus.
    if '/nvme/' in sysfs or '/nvme-subsystem/' in sysfs:
        return 'nvme'
    if name.startswith('sd'):
        return 'scsi'
    if name.startswith('vd') and '/virtio' in sysfs:
        return 'virtio'
    return None


def _model(fs, sysfs):
    try:
        parent = fs.realpath(sysfs + '/device') if fs.lexists(sysfs + '/device') else None
    except FsError:
        return None
    text = fs.read_optional(parent + '/model') if parent else None
    # SCSI and NVMe pad the model with spaces; udev ignores trailing whitespace when it compares attributes.
    return text.rstrip() if text is not None else None


def _rotational(fs, sysfs):
    text = (fs.read_optional(sysfs + '/queue/rotational') or '').strip()
    return {'0': False, '1': True}.get(text)


def _virtual_reason(name):
    for prefix, what in _VIRTUAL_KINDS:
        if name.startswith(prefix):
            return '%s: name it exactly (name: %s) to include it' % (what, name)
    return 'virtual block device: name it exactly (name: %s) to include it' % name


def read_device(fs, name):
    """One /sys/block entry, resolved to its directory below /sys/devices."""
    if not DEVICE_NAME.match(name):
        return BlockDevice(name, skip_reason='its name is not of the form [a-z][a-z0-9_-]*, which knob names carry')
    link = '%s/%s' % (SYS_BLOCK, name)
    try:
        sysfs = fs.realpath(link)
    except FsError as exc:
        return BlockDevice(name, skip_reason=str(exc))
    # Old CONFIG_SYSFS_DEPRECATED kernels keep real directories in /sys/block; those are fine as they are.
    if not sysfs.startswith('/sys/devices/') and not (sysfs == link and not fs.is_symlink(link)):
        return BlockDevice(name, skip_reason='%s leads to %s, not into /sys/devices' % (link, sysfs))
    device = BlockDevice(name, sysfs=sysfs, transport=_transport(fs, name, sysfs), model=_model(fs, sysfs),
                         rotational=_rotational(fs, sysfs))
    if sysfs.startswith(VIRTUAL_BLOCK_DIR):
        device.virtual = True
        device.skip_reason = _virtual_reason(name)
    return device


def discover(fs):
    """``(disks, partitions)``: every /sys/block entry, and the partitions that only /sys/class/block lists."""
    try:
        names = fs.listdir(SYS_BLOCK)
    except FsError:
        names = []
    disks = [read_device(fs, name) for name in names]
    by_sysfs = {disk.sysfs: disk for disk in disks if disk.sysfs}
    try:
        class_names = fs.listdir(SYS_CLASS_BLOCK)
    except FsError:
        class_names = []
    partitions = []
    for name in class_names:
        if name in names:
            continue
        try:
            real = fs.realpath('%s/%s' % (SYS_CLASS_BLOCK, name))
        except FsError:
            continue
        if not fs.lexists(real + '/partition'):
            continue
        disk = by_sysfs.get(posixpath.dirname(real))
        parent = disk.name if disk else posixpath.basename(posixpath.dirname(real))
        partitions.append(BlockDevice(
            name, sysfs=real, transport=disk.transport if disk else None, model=disk.model if disk else None,
            rotational=disk.rotational if disk else None, partition_of=parent,
            skip_reason='partition of %s: queue settings belong to the whole disk; match %s instead' % (parent, parent)))
    return disks, partitions


# -- entries and selection -------------------------------------------------------------------------------------------
def _is_exact(name):
    return name is not None and not GLOB_CHARS.search(name)


def check_entries(entries):
    """Refuse bad entries before anything is read or written. Returns them with canonical setting values."""
    problems = []
    checked = []
    for index, entry in enumerate(entries):
        where = 'devices[%d]' % index
        match = dict(entry.get('match') or {})
        settings = {}
        for option in SETTING_OPTIONS:
            value = entry.get(option)
            if value is None:
                continue
            setting = SETTINGS_BY_OPTION[option]
            try:
                if option == 'scheduler':
                    text = str(value).strip()
                    if not SCHEDULER_WORD.match(text):
                        raise ValidationError('%s.scheduler: %s is not an I/O scheduler name' % (where, shown(value)))
                    settings[option] = text
                else:
                    settings[option] = setting.validator.canonical('%s.%s' % (where, option), value)
            except ValidationError as exc:
                problems.append(str(exc))
        problems.extend(_match_problems(where, match))
        if all(entry.get(option) is None for option in SETTING_OPTIONS):
            problems.append('%s sets nothing: give at least one of %s' % (where, ', '.join(SETTING_OPTIONS)))
        checked.append({'match': match, 'settings': settings})
    if problems:
        raise ValidationError('invalid devices, nothing was changed: ' + '; '.join(problems))
    return checked


def _match_problems(where, match):
    problems = []
    name, model, transport = match.get('name'), match.get('model'), match.get('transport')
    if all(match.get(key) is None for key in ('name', 'transport', 'model', 'rotational')):
        problems.append("%s.match selects nothing: give name, transport, model or rotational (name: '*' selects "
                        "every disk)" % where)
    if name is not None:
        if '/' in name or '..' in name:
            problems.append("%s.match.name %s: a device name may not contain '/' or '..'" % (where, shown(name)))
        elif not NAME_GLOB.match(name):
            problems.append('%s.match.name %s: use letters, digits, "_", "-" and the glob characters * ? [ ] !'
                            % (where, shown(name)))
        elif _is_exact(name) and not DEVICE_NAME.match(name):
            problems.append('%s.match.name %s is not a block device name' % (where, shown(name)))
    if model is not None and (not MODEL_GLOB.match(model) or model != model.strip()):
        problems.append('%s.match.model %s: use printable characters without quotes, "|", "$", "%%" or "\\", and '
                        'no leading or trailing space' % (where, shown(model)))
    if transport is not None and transport not in TRANSPORTS:
        problems.append('%s.match.transport %s: expected one of %s' % (where, shown(transport), ', '.join(TRANSPORTS)))
    return problems


def matches(match, device):
    """True when every selector of ``match`` holds for ``device`` (selectors AND together)."""
    if match.get('name') is not None and not fnmatch.fnmatchcase(device.name, match['name']):
        return False
    if match.get('transport') is not None and device.transport != match['transport']:
        return False
    if match.get('model') is not None and (device.model is None or not fnmatch.fnmatchcase(device.model, match['model'])):
        return False
    if match.get('rotational') is not None and device.rotational != bool(match['rotational']):
        return False
    return True


def select(entries, disks, partitions):
    """``(selected, skipped)``: ``[(device, [entry indexes])]`` in name order, and ``{name: reason}``."""
    selected = []
    skipped = {}
    for device in disks + partitions:
        hits = [index for index, entry in enumerate(entries) if matches(entry['match'], device)]
        if device.partition_of:
            # A partition is only ever reached through a name glob; say why it is left out.
            hits = [index for index in hits if entries[index]['match'].get('name') is not None]
        if hits and device.virtual:
            # A glob never reaches a virtual device; only an entry that names it exactly does.
            exact = [index for index in hits if entries[index]['match'].get('name') == device.name]
            if not exact:
                skipped[device.name] = device.skip_reason
            hits = exact
        elif hits and device.skip_reason:
            skipped[device.name] = device.skip_reason
            continue
        if hits:
            selected.append((device, hits))
    present = {device.name for device in disks + partitions}
    for entry in entries:
        name = entry['match'].get('name')
        if _is_exact(name) and name not in present:
            skipped[name] = 'not present under %s; the udev rule sets it up when it appears' % SYS_BLOCK
    return sorted(selected, key=lambda pair: pair[0].name), skipped


def merged_settings(entries, hits):
    """``{option: (value, entry index)}``: later entries win, as later udev assignments do."""
    merged = {}
    for index in hits:
        for option, value in entries[index]['settings'].items():
            merged[option] = (value, index)
    return merged


# -- udev rules ------------------------------------------------------------------------------------------------------
_RULES_HEADER = Template("""\
# Managed by aitune.kernel (block_queue): edits here are overwritten on the next run.
# Undo with aitune.kernel.restore, which removes this file and puts back the live values recorded in
# /var/lib/aitune/baseline.json. The rules match stable attributes, not device names, so a replacement disk that
# matches gets the same settings. Later rules win where two set the same attribute.
""")
_RULE = Template('# devices[${index}]: ${summary}\n${keys}\n')
_LEFT_OUT = Template('# devices[${index}]: ${option} left out: ${reason}\n')
_TRANSPORT_KEYS = {
    'nvme': 'SUBSYSTEMS=="nvme|nvme-subsystem"',
    'scsi': 'SUBSYSTEMS=="scsi"',
    'virtio': 'DRIVERS=="virtio_blk"',
}


def boot_ignored(option, version):
    """Why the running kernel ignores ``option`` at every write, or None."""
    if option == 'io_poll' and version >= IO_POLL_IGNORED_SINCE:
        return ('since 5.15 the kernel ignores writes to io_poll; polled queues come from the driver '
                '(for NVMe the nvme.poll_queues= parameter)')
    if option == 'io_poll_delay' and version >= HYBRID_POLL_REMOVED_IN:
        return 'hybrid polling was removed in 6.4: io_poll_delay reads -1 and the kernel ignores writes to it'
    return None


def _summary(match):
    parts = ['%s=%s' % (key, match[key]) for key in ('name', 'transport', 'model') if match.get(key) is not None]
    if match.get('rotational') is not None:
        parts.append('rotational=%s' % ('true' if match['rotational'] else 'false'))
    return ' '.join(parts)


def render_rules(entries, version):
    """The udev rules file for ``entries`` (checked), or None when no entry leaves anything to set."""
    blocks = []
    rules = 0
    for index, entry in enumerate(entries):
        match = entry['match']
        keys = ['ACTION=="add|change"', 'SUBSYSTEM=="block"', 'ENV{DEVTYPE}=="disk"']
        if match.get('name') is not None:
            keys.append('KERNEL=="%s"' % match['name'])
        if not _is_exact(match.get('name')):
            # Live, a glob never selects loop, zram, dm or md devices; at boot it must not either.
            keys.append('DEVPATH!="/devices/virtual/block/*"')
        if match.get('transport') is not None:
            keys.append(_TRANSPORT_KEYS[match['transport']])
        if match.get('model') is not None:
            keys.append('ATTRS{model}=="%s"' % match['model'])
        if match.get('rotational') is not None:
            keys.append('ATTR{queue/rotational}=="%d"' % (1 if match['rotational'] else 0))
        assignments = []
        block = ''
        # Sorted by knob leaf, so the scheduler (elevator) comes first: switching it resets nr_requests.
        for setting in sorted(SETTINGS, key=lambda s: s.leaf):
            value = entry['settings'].get(setting.option)
            if value is None:
                continue
            reason = boot_ignored(setting.option, version)
            if reason:
                block += _LEFT_OUT.substitute(index=index, option=setting.option, reason=reason)
            else:
                assignments.append('ATTR{queue/%s}="%s"' % (setting.filename, value))
        if assignments:
            rules += 1
            block += _RULE.substitute(index=index, summary=_summary(match), keys=', '.join(keys + assignments))
        if block:
            blocks.append(block)
    if not rules:
        return None
    return _RULES_HEADER.substitute() + '\n' + '\n'.join(blocks)


# -- planning the run ------------------------------------------------------------------------------------------------
class Outcome(object):
    """A knob decided before the engine runs: the kernel would ignore or refuse the write, so none is made."""

    def __init__(self, name, state, path, previous, desired, reason):
        self.name = name
        self.state = state
        self.path = path
        self.previous = previous
        self.desired = desired
        self.reason = reason

    def record(self, report):
        report.record(self.name, self.state, path=self.path, previous=self.previous, desired=self.desired,
                      value=self.previous, reason=self.reason)


def _read_raw(fs, path):
    """A queue file's text, None when absent; FsError(INVALID) where the kernel refuses to show it."""
    if not fs.lexists(path):
        return None
    try:
        return fs.read(path)
    except FsError as exc:
        if exc.kind == INVALID:
            raise
        return None


def plan_device(engine, device, merged):
    """Check one device's settings against what it offers. Returns ``(desired, knobs, outcomes, problems)``: the
    values to apply, and the knobs they belong to, at the device's resolved directory."""
    fs, version = engine.fs, engine.kernel.version
    desired, knobs, outcomes, problems = {}, {}, [], []
    for option in sorted(merged, key=lambda o: SETTINGS_BY_OPTION[o].leaf):
        value, index = merged[option]
        setting = SETTINGS_BY_OPTION[option]
        knob = block_knob(device.name, setting.leaf, device.sysfs)
        knobs[knob.name] = knob
        path = knob.locations[0].path
        where = 'devices[%d].%s' % (index, option)
        try:
            raw = _read_raw(fs, path)
        except FsError as exc:
            outcomes.append(Outcome(knob.name, UNSUPPORTED, path, None, value,
                                    '%s: this queue does not use it (%s)' % (knob.name, exc)))
            continue
        if raw is None:
            desired[knob.name] = value  # the engine reports it unsupported, with the places it looked
            continue
        current = knob.current(raw)
        if option == 'scheduler' and value not in KernelChoice.offered(raw):
            problems.append('%s: %s does not offer the %r scheduler; it offers %s'
                            % (where, device.name, value, ', '.join(KernelChoice.offered(raw))))
            continue
        if option == 'max_sectors_kb':
            hardware = (fs.read_optional('%s/queue/max_hw_sectors_kb' % device.sysfs) or '').strip()
            if hardware.isdigit() and int(value) > int(hardware):
                problems.append('%s: %s is above the max_hw_sectors_kb of %s (%s)'
                                % (where, value, device.name, hardware))
                continue
        ignored = boot_ignored(option, version) if current != value else None
        if option == 'io_poll_delay' and current != value and not ignored:
            # This run's own io_poll write (planned just before, leaves sort that way) counts as done.
            io_poll = block_knob(device.name, 'io_poll').name
            polling = desired.get(io_poll) or (fs.read_optional('%s/queue/io_poll' % device.sysfs) or '').strip()
            if polling == '0':
                ignored = 'polling is off on %s (io_poll reads 0), so the kernel has no use for io_poll_delay' % (
                    device.name)
        if ignored and engine.probe(knob).state == APPLIED:
            outcomes.append(Outcome(knob.name, NOT_PERMITTED_STATE, path, current, value, ignored))
            continue
        desired[knob.name] = value
    return desired, knobs, outcomes, problems


class BlockPlan(object):
    """Everything one aitune.kernel.block call decided before the engine applies it."""

    def __init__(self, entries, selected, skipped, desired, knobs, outcomes, rules):
        self.entries = entries
        self.selected = selected
        self.skipped = skipped
        self.desired = desired
        self.knobs = knobs
        self.outcomes = outcomes
        self.rules = rules

    def devices(self):
        return {device.name: device.facts(hits) for device, hits in self.selected}


def plan(engine, entries):
    """Validate ``entries`` (the module's ``devices`` option), select devices, and check each one's settings.

    Raises ValidationError, before anything is written, on bad input.
    """
    checked = check_entries(entries)
    disks, partitions = discover(engine.fs)
    selected, skipped = select(checked, disks, partitions)
    desired, knobs, outcomes, problems = {}, {}, [], []
    for device, hits in selected:
        device_desired, device_knobs, device_outcomes, device_problems = plan_device(
            engine, device, merged_settings(checked, hits))
        desired.update(device_desired)
        knobs.update(device_knobs)
        outcomes.extend(device_outcomes)
        problems.extend(device_problems)
    if problems:
        raise ValidationError('invalid settings, nothing was changed: ' + '; '.join(problems))
    return BlockPlan(checked, selected, skipped, desired, knobs, outcomes,
                     render_rules(checked, engine.kernel.version))


def apply(engine, entries, persist=True, strict=False):
    """Apply ``entries`` through the engine. Returns ``(report, plan)``.

    With ``persist`` the udev rules file is the complete set of files the block subsystem owns; without it that set
    is empty, so a rules file an earlier call wrote is taken back to its original (removed, where there was none).
    """
    block_plan = plan(engine, entries)
    if strict:
        blocked = ['%s is %s: %s' % (o.name, o.state, o.reason) for o in block_plan.outcomes if o.state != 'applied']
        if blocked:
            raise ValidationError('strict mode, nothing was changed: ' + '; '.join(blocked))
    files = {RULES_PATH: block_plan.rules} if persist and block_plan.rules else {}
    # Without udev there is no /etc/udev, and nothing would ever read the file; the settings stay live only.
    no_udev = bool(files) and not engine.fs.is_dir(UDEV_DIR)
    if no_udev:
        files = {}
    report = engine.apply(block_plan.desired, persist=persist, strict=strict, files=(FILES_SUBSYSTEM, files),
                          knobs=block_plan.knobs)
    for outcome in block_plan.outcomes:
        outcome.record(report)
    if no_udev:
        report.actions.append(NO_UDEV)
    return report, block_plan


# -- the module's options and run --------------------------------------------------------------------------------------
# A rule: which disks, and the queue settings, one option per setting and typed after its validator.
RULE_SPEC = dict(
    match=dict(type='dict', required=True, options=dict(
        name=dict(type='str'),
        transport=dict(type='str', choices=list(TRANSPORTS)),
        model=dict(type='str'),
        rotational=dict(type='bool'),
    )),
    **knob_options(SETTINGS)
)
ARGUMENT_SPEC = dict(
    devices=dict(type='list', elements='dict', required=True, options=RULE_SPEC),
)


def run(subsystem_run):
    """aitune.kernel.block: select the disks, plan each one's settings, apply them and the udev rules."""
    params = subsystem_run.params

    def body(engine):
        report, block_plan = apply(engine, params['devices'], persist=params['persist'], strict=params['strict'])
        return report, dict(devices=block_plan.devices(), skipped_devices=block_plan.skipped)
    return run_engine(subsystem_run, body)
