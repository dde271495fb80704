# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Persistence without a daemon: one managed sysctl.d file, one tmpfiles.d file, one modprobe.d file, one grub drop-in,
and the files a subsystem owns whole (systemd units and drop-ins, udev rules, the irqbalance settings).

The managed files are pure renderings of ``/var/lib/aitune/state.json``, the record of what the collection has
applied. Modules change the state, then every managed file is re-rendered from it; a file with no entries left goes
back to what the baseline recorded before the collection first wrote it (usually: absent).

Rendering uses ``string.Template`` from the standard library: modules run on targets, whose Python may not have Jinja2.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import shlex
from string import Template

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import (
    BASELINE_PATH, FORMAT, STATE_DIR, JsonStore, now_iso)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    MODULE_PARAM_PATH, PERSIST_MODPROBE, PERSIST_SYSCTL, PERSIST_TMPFILES, sysctl_key)
from ansible_collections.aitune.kernel.plugins.module_utils._state_schema import check_state

STATE_PATH = STATE_DIR + '/state.json'
PERSIST_CMDLINE = 'cmdline'

SYSCTL_FILE = '/etc/sysctl.d/90-aitune.conf'
TMPFILES_FILE = '/etc/tmpfiles.d/aitune.conf'
# After the distribution's own files, so an option given there too is given again here, and the last one counts.
MODPROBE_FILE = '/etc/modprobe.d/90-aitune.conf'
GRUB_FILE = '/etc/default/grub.d/90-aitune.cfg'
UNIT_DIR = '/etc/systemd/system'
UDEV_RULES_DIR = '/etc/udev/rules.d'
# Unit names the collection writes: plain characters only, so a name can never become a path.
_UNIT_NAME = r'[A-Za-z0-9_:.@-]{1,200}\.(?:service|mount|slice|scope|socket|timer|path|target)'
UNIT_NAME = re.compile('^%s$' % _UNIT_NAME)
DROPIN_LEAF = '90-aitune.conf'

# What must happen after an owned file changes, told by where it lives.
FILE_UNIT = 'unit'            # a unit of ours: daemon-reload, then enable and start (or stop and disable)
FILE_DROPIN = 'dropin'        # a drop-in for someone else's unit: daemon-reload; restarting it is the user's call
FILE_UDEV = 'udev'            # udev rules: reload udev and trigger the subsystem
FILE_IRQBALANCE = 'irqbalance'  # irqbalance's settings: restart irqbalance if it runs
FILE_FACT = 'fact'            # the record of a tuning run, an Ansible local fact: nothing to do after writing it
FACTS_DIR = '/etc/ansible/facts.d'
# The record of a tuning run (an Ansible local fact); only the collection writes a file of this name.
FACT_FILE = FACTS_DIR + '/aitune.fact'
# The owner of the local fact in the state. Not a subsystem: the record says the host holds a whole mode, so any
# restore, of one subsystem or all, takes it away.
RECORD_OWNER = 'record'


# Every file a subsystem may own: its kind, the directory it lives below, and its path below that directory. The one
# list of where owned files may be: owned_file_kind and the sweep of temp files a killed write left both read it.
OWNED_FILES = (
    (FILE_UNIT, UNIT_DIR, re.compile('^%s$' % _UNIT_NAME)),
    (FILE_DROPIN, UNIT_DIR, re.compile('^%s\\.d/%s$' % (_UNIT_NAME, re.escape(DROPIN_LEAF)))),
    (FILE_UDEV, UDEV_RULES_DIR, re.compile(r'^[0-9]{2}-aitune[a-z0-9-]*\.rules$')),
    (FILE_IRQBALANCE, '/etc/default', re.compile('^irqbalance$')),
    (FILE_IRQBALANCE, '/etc/sysconfig', re.compile('^irqbalance$')),
    (FILE_FACT, FACTS_DIR, re.compile(r'^[A-Za-z0-9_-]{1,100}\.fact$')),
)


def owned_file_kind(path):
    """The kind of an owned file, from its path; None for a path no subsystem may own."""
    for kind, directory, below in OWNED_FILES:
        if path.startswith(directory + '/') and below.match(path[len(directory) + 1:]):
            return kind
    return None


def dropin_path(unit):
    """The collection's drop-in for ``unit``; refuses a name that is not a systemd unit name."""
    if not UNIT_NAME.match(unit or ''):
        raise ValueError('invalid systemd unit name %r' % (unit,))
    return '%s/%s.d/%s' % (UNIT_DIR, unit, DROPIN_LEAF)


_HEADER = ('# Managed by aitune.kernel: edits here are overwritten on the next run.\n'
           '# Undo with aitune.kernel.restore, which puts back the values recorded in /var/lib/aitune/baseline.json.\n')

# One template per format, so each file's syntax is visible in one place.
_SYSCTL_LINE = Template('# ${knob}\n${key} = ${value}\n')
# tmpfiles.d "w": write the argument to an existing file at boot; "-" keeps mode, owner, group and age unset.
_TMPFILES_LINE = Template('# ${knob}\nw ${path} - - - - ${value}\n')
# modprobe.d "options": given to the module each time it loads (modprobe.d(5)).
_MODPROBE_LINE = Template('# ${knob}\noptions ${module} ${param}=${value}\n')
_GRUB_FILE = Template('GRUB_CMDLINE_LINUX_DEFAULT="$${GRUB_CMDLINE_LINUX_DEFAULT} ${params}"\n')


class State(JsonStore):
    """What the collection has applied: desired values per knob, and boot parameters per owner."""

    path = STATE_PATH

    TABLES = ('knobs', 'cmdline', 'files')

    def __init__(self, fs, before_rename=None):
        super(State, self).__init__(fs, before_rename=before_rename)
        # Early states kept units by name; they are owned files like any other.
        for name, entry in self.data.pop('units', {}).items():
            self.data.setdefault('files', {})['%s/%s' % (UNIT_DIR, name)] = entry
        for table in self.TABLES:
            self.data.setdefault(table, {})

    @staticmethod
    def empty():
        return {'format': FORMAT, 'knobs': {}, 'cmdline': {}, 'files': {}}

    def check(self, document):
        check_state(document, self.path, owned_file_kind, UNIT_DIR)

    def is_empty(self):
        return not any(self.data.get(table) for table in self.TABLES)

    def set_knob(self, knob, path, value, persist):
        self.data['knobs'][knob.name] = {
            'subsystem': knob.subsystem, 'path': path, 'value': value,
            'persist': persist, 'applied_at': now_iso(),
        }
        if knob.pair:
            # Setting one half of a ratio/bytes pair zeroes the other in the kernel: it must not persist too.
            self.data['knobs'].pop(knob.pair, None)

    def set_cmdline(self, owner, subsystem, params):
        if params:
            self.data['cmdline'][owner] = {'subsystem': subsystem, 'params': list(params)}
        else:
            self.data['cmdline'].pop(owner, None)

    def set_files(self, subsystem, files):
        """Make ``{path: content}`` the complete set of files owned by ``subsystem``."""
        table = self.data['files']
        for path in [p for p, entry in table.items() if entry['subsystem'] == subsystem and p not in files]:
            del table[path]
        for path, content in files.items():
            if owned_file_kind(path) is None:
                raise ValueError('%r is not a file a subsystem may own' % (path,))
            table[path] = {'subsystem': subsystem, 'content': content}

    def set_units(self, subsystem, units):
        """Make ``{unit name: content}`` the complete set of systemd units owned by ``subsystem``."""
        for name in units:
            if not UNIT_NAME.match(name):
                raise ValueError('invalid systemd unit name %r' % (name,))
        self.set_files(subsystem, {'%s/%s' % (UNIT_DIR, name): content for name, content in units.items()})

    def files(self):
        return self.data['files']

    def drop_subsystem(self, subsystem):
        for table in self.TABLES:
            entries = self.data[table]
            for name in [n for n, entry in entries.items() if subsystem in ('all', entry['subsystem'])]:
                del entries[name]

    def knobs(self):
        return self.data['knobs']

    def cmdline_params(self):
        params = []
        for owner in sorted(self.data['cmdline']):
            params.extend(self.data['cmdline'][owner]['params'])
        return params


class PreviewState(State):
    """The state the check-mode runs of one module call plan on together (the profile module's subsystems), each on
    top of what the ones before it would have applied, and the live values those runs would write (``planned``, path
    -> text; only values whose file reads back as written). An engine in check mode reads the host through
    ``planned`` (HostFS.planned), so a rule between subsystems (_invariants) that reads another subsystem's part sees
    it as the earlier runs would leave it, as it does in the run that writes."""

    def __init__(self, fs):
        super(PreviewState, self).__init__(fs)
        self.planned = {}


def render(kind, state):
    """The managed file's content for ``kind``, or None when the state holds no entry of that kind."""
    if kind == PERSIST_CMDLINE:
        params = state.cmdline_params()
        if not params:
            return None
        return _HEADER + _GRUB_FILE.substitute(params=' '.join(shlex.quote(p) for p in params))
    entries = sorted((name, entry) for name, entry in state.knobs().items() if entry.get('persist') == kind)
    if not entries:
        return None
    if kind == PERSIST_SYSCTL:
        lines = [_SYSCTL_LINE.substitute(knob=name, key=sysctl_key(entry['path']), value=entry['value'])
                 for name, entry in entries]
    elif kind == PERSIST_MODPROBE:
        lines = []
        for name, entry in entries:
            # The state's schema holds every such path to /sys/module/<module>/parameters/<parameter>.
            module, param = MODULE_PARAM_PATH.match(entry['path']).groups()
            lines.append(_MODPROBE_LINE.substitute(knob=name, module=module, param=param, value=entry['value']))
    else:
        lines = [_TMPFILES_LINE.substitute(knob=name, path=entry['path'], value=entry['value'])
                 for name, entry in entries]
    return _HEADER + ''.join(lines)


def file_owners(state, path):
    """The subsystems whose entries in ``state`` make up the file at ``path``, sorted."""
    kinds = {file_path: kind for kind, file_path in MANAGED_FILES}
    if path in kinds:
        if kinds[path] == PERSIST_CMDLINE:
            return sorted({entry['subsystem'] for entry in state.data['cmdline'].values()})
        return sorted({entry['subsystem'] for entry in state.knobs().values() if entry.get('persist') == kinds[path]})
    entry = state.files().get(path)
    return [entry['subsystem']] if entry else []


def unit_of(path):
    """The unit name when ``path`` is one of the collection's own systemd unit files, else None."""
    return path[len(UNIT_DIR) + 1:] if owned_file_kind(path) == FILE_UNIT else None


MANAGED_FILES = (
    (PERSIST_SYSCTL, SYSCTL_FILE),
    (PERSIST_TMPFILES, TMPFILES_FILE),
    (PERSIST_MODPROBE, MODPROBE_FILE),
    (PERSIST_CMDLINE, GRUB_FILE),
)


def temp_file_dirs():
    """The directories where the collection writes files, each through a temp file beside it: those of the owned
    files, of the managed files and of its own state. A killed write leaves its temp file in one of them (or, for a
    drop-in, one level below)."""
    dirs = {directory for dummy, directory, dummy_below in OWNED_FILES}
    dirs.update(path.rsplit('/', 1)[0] for path in _written_files())
    return sorted(dirs)


def may_leave_temp_file(path):
    """Whether ``path`` is a file the collection writes, so a temp file beside it named after it is one of ours."""
    return owned_file_kind(path) is not None or path in _written_files()


def _written_files():
    return [BASELINE_PATH, STATE_PATH] + [path for dummy, path in MANAGED_FILES]


def file_targets(fs, state, baseline):
    """What each managed file should become: ``{path: (before, after)}`` for the files that differ.

    ``before``/``after`` are the content or None for an absent file. A kind with no entries returns its file to the
    original the baseline holds; a file the collection never wrote is left alone.
    """
    wanted = {path: render(kind, state) for kind, path in MANAGED_FILES}
    for path, entry in state.files().items():
        wanted[path] = entry['content']
    for path in baseline.files():
        # A unit the state no longer holds goes back to its original, like any managed file without entries.
        wanted.setdefault(path, None)
    targets = {}
    for path, after in sorted(wanted.items()):
        if after is None:
            original = baseline.files().get(path)
            if original is None:
                continue
            after = original['content'] if original['existed'] else None
        existed, before, dummy = fs.file_state(path)
        if not existed:
            before = None
        if before != after:
            targets[path] = (before, after)
    return targets


def write_target(fs, path, content, baseline, before_rename=None):
    """Bring a managed file to ``content`` (None removes it), restoring the original mode where one was recorded."""
    original = baseline.files().get(path) or {}
    if content is None:
        fs.remove_file(path)
        for directory in reversed(original.get('missing_dirs') or []):
            fs.remove_empty_dir(directory)
        return
    fs.write_file_atomic(path, content, mode=original.get('mode') or 0o644, before_rename=before_rename)


def missing_boot_params(params, cmdline):
    """The desired boot parameters that the running kernel's command line does not show."""
    running = set(shlex.split(cmdline))
    return [param for param in params if param not in running]


def update_bootloader(module, before_params, after_params):
    """Make the bootloader pick up changed boot parameters. Returns a short description of what was done.

    Debian and Ubuntu regenerate grub.cfg from the drop-in with update-grub; BLS systems (RHEL, Fedora) take the
    parameters through grubby, which needs to be told what to add and what to remove.
    """
    update_grub = module.get_bin_path('update-grub')
    grubby = module.get_bin_path('grubby')
    if update_grub:
        commands = [[update_grub]]
    elif grubby:
        removed = [param for param in before_params if param not in after_params]
        commands = [[grubby, '--update-kernel=ALL', '--remove-args=%s' % ' '.join(removed)]] if removed else []
        if after_params:
            commands.append([grubby, '--update-kernel=ALL', '--args=%s' % ' '.join(after_params)])
    else:
        return 'neither update-grub nor grubby was found: regenerate the bootloader configuration yourself'
    for argv in commands:
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg='%s failed (rc=%d): %s' % (' '.join(argv), rc, (err or out).strip()))
    return 'ran %s' % '; '.join(' '.join(argv) for argv in commands)
