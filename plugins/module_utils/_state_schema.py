# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The exact shape of the collection's own state files, checked on every load before anything trusts them.

``/var/lib/aitune/baseline.json`` holds the originals (_baseline.Baseline), ``/var/lib/aitune/state.json`` what the
collection applied (_persist.State). Restore writes what they hold, as root, into kernel files and into /etc: a
document is used only when every key is known, every value has the type and form the code that writes it gives it,
and every string that becomes a path is a plain absolute path below the allowed roots (_fsio.WRITE_ROOTS).

The first bad field refuses the whole file, named by a JSON pointer (RFC 6901, without the leading ``/``: ``~1``
stands for a ``/`` inside a key), and the message says how to move the file aside. Nothing is written after a
refusal: the engine loads both files before it takes the host lock.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re
from collections import OrderedDict

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import (
    INVALID, WRITE_ROOTS, FsError, check_path, may_create_dir)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import MODULE_PARAM_PATH, ValidationError
from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup

# The version of both documents; a bool is no version, though ``True == 1`` in Python.
FORMAT = 1

# Where the kernel's files are (live values, created cgroups), and where the configuration files are (the managed
# files and the files a subsystem owns).
KERNEL_ROOTS = tuple(root for root in WRITE_ROOTS if root.startswith(('/proc/', '/sys')))
CONFIG_ROOTS = tuple(root for root in WRITE_ROOTS if root.startswith('/etc/'))
# The values a knob's entry in the state may persist as (_knobs.PERSIST_*): the sysctl.d file, the tmpfiles.d file,
# the modprobe.d file, a unit of the collection's (read back only), or live only.
PERSIST_KINDS = ('sysctl', 'tmpfiles', 'modprobe', 'systemd', None)
SYSCTL_ROOT = '/proc/sys/'

# _baseline.now_iso(): second resolution, UTC.
TIMESTAMP = re.compile(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$')
# A subsystem (sched, memory, ..., and "record" for the local fact).
SUBSYSTEM = re.compile(r'^[a-z][a-z0-9_-]{0,63}$')
# The owner of boot parameters (hugepages.boot).
CMDLINE_OWNER = re.compile(r'^[a-z][a-z0-9_-]{0,63}(\.[a-z0-9_-]{1,64}){0,4}$')
# One boot parameter as the grub drop-in carries it: no quote, blank, "$", backquote or backslash, which would leave
# the shell-quoted GRUB_CMDLINE_LINUX_DEFAULT assignment.
BOOT_PARAM = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.,:=+/@-]{0,255}$')
_CONTROL = re.compile(r'[\x00-\x1f\x7f]')
_BLANK_OR_CONTROL = re.compile(r'[\x00-\x20\x7f]')
_MAX_MODE = 0o7777


class StateFileError(FsError):
    """A state file that may not be used: the message names the file and the first bad field, or what is wrong with
    its owner or mode, and says how to move the file aside."""

    def __init__(self, path, message):
        super(StateFileError, self).__init__(INVALID, path, message)


def move_aside(path):
    return 'move the file aside (mv %s %s.bad) to start from the live values' % (path, path)


class _Bad(Exception):
    """The first bad field: its pointer and what is wrong with it."""

    def __init__(self, pointer, problem):
        super(_Bad, self).__init__(problem)
        self.pointer = pointer
        self.problem = problem


def _escape(key):
    return key.replace('~', '~0').replace('/', '~1')


def _child(pointer, key):
    return '%s/%s' % (pointer, _escape(key)) if pointer else _escape(key)


def _got(value):
    """The JSON type of ``value``, or for a scalar the value itself (shortened)."""
    if isinstance(value, dict):
        return 'object'
    if isinstance(value, list):
        return 'array'
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + '...'


def _type_name(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'boolean'
    if isinstance(value, int):
        return 'integer'
    if isinstance(value, float):
        return 'number'
    if isinstance(value, str):
        return 'string'
    return _got(value)


def _fail(pointer, expected, value, shown=False):
    raise _Bad(pointer, 'must be %s, got %s' % (expected, _got(value) if shown else _type_name(value)))


# -- the parts a document is made of -----------------------------------------------------------------------------------
def _string(value, pointer, expected='a string'):
    if not isinstance(value, str):
        _fail(pointer, expected, value)
    return value


def _text(value, pointer, null=False):
    """Any string (file content, an original value): only NUL is refused, no file and no kernel value holds one."""
    if value is None and null:
        return
    _string(value, pointer, 'a string or null' if null else 'a string')
    if '\0' in value:
        _fail(pointer, 'a string without a NUL character', value, shown=True)


def _line(value, pointer, null=False):
    """A value the collection renders into a sysctl.d or tmpfiles.d line: no line break or other control character."""
    if value is None and null:
        return
    _string(value, pointer, 'a string or null' if null else 'a string')
    if _CONTROL.search(value):
        _fail(pointer, 'one line without control characters', value, shown=True)


def _matching(pattern, expected):
    def check(value, pointer):
        _string(value, pointer)
        if not pattern.match(value):
            _fail(pointer, expected, value, shown=True)
    return check


def _timestamp(value, pointer):
    _matching(TIMESTAMP, 'a UTC time such as "2026-01-31T12:00:00Z"')(value, pointer)


def _is_int(value):
    """An integer and not a bool (True == 1 would pass as format 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _boolean(value, pointer):
    if not isinstance(value, bool):
        _fail(pointer, 'true or false', value)


def _mode(value, pointer):
    if value is None:
        return
    if not _is_int(value) or not 0 <= value <= _MAX_MODE:
        _fail(pointer, 'a file mode between 0 and %d (0%o) or null' % (_MAX_MODE, _MAX_MODE), value,
              shown=isinstance(value, (int, float)))


def _below(path, roots):
    return any(path == root or path.startswith(root + '/') for root in roots)


def _path(value, pointer, roots, what, blank=True):
    """An absolute path below one of ``roots`` (or a configuration root itself: the irqbalance settings are roots of
    their own): no empty, "." or ".." component, no NUL or other control character (and with ``blank=False`` no blank
    either: the tmpfiles.d line separates its fields with blanks)."""
    _string(value, pointer, 'an absolute path')
    if (_CONTROL if blank else _BLANK_OR_CONTROL).search(value):
        _fail(pointer, 'a path without %scontrol characters' % ('' if blank else 'blanks or '), value, shown=True)
    try:
        check_path(value)
    except FsError:
        _fail(pointer, 'an absolute path without empty, "." or ".." components', value, shown=True)
    if not _below(value, roots) or (value in roots and roots == KERNEL_ROOTS):
        _fail(pointer, '%s below %s' % (what, ', '.join(roots)), value, shown=True)


def _kernel_path(value, pointer):
    _path(value, pointer, KERNEL_ROOTS, 'a kernel file')


def _config_path(pointer, key):
    _path(key, pointer, CONFIG_ROOTS, 'a configuration file')


def _knob_name(pointer, name):
    try:
        lookup(name)
    except ValidationError:
        raise _Bad(pointer, 'is not a setting this collection knows (the key must be a knob name such as '
                            'vm.swappiness)')


def _object(value, pointer, required, optional=None):
    """A JSON object with exactly the ``required`` keys and any of the ``optional`` ones, each checked in the order
    given after the unknown keys are refused."""
    if not isinstance(value, dict):
        _fail(pointer, 'an object', value)
    optional = optional or {}
    unknown = sorted(key for key in value if key not in required and key not in optional)
    if unknown:
        raise _Bad(_child(pointer, unknown[0]), 'is not a field this file has (known here: %s)'
                   % ', '.join(sorted(list(required) + list(optional))))
    for key, check in list(required.items()) + list(optional.items()):
        if key in value:
            check(value[key], _child(pointer, key))
        elif key in required:
            raise _Bad(_child(pointer, key), 'is missing')


def _table(check_key, check_entry):
    """An object whose keys are names or paths, each checked by ``check_key(pointer, key)``, and whose entries by
    ``check_entry(entry, pointer, key)``."""
    def check(value, pointer):
        if not isinstance(value, dict):
            _fail(pointer, 'an object', value)
        for key in sorted(value):
            entry_pointer = _child(pointer, key)
            check_key(entry_pointer, key)
            check_entry(value[key], entry_pointer, key)
    return check


def _format(value, pointer):
    if not _is_int(value) or value != FORMAT:
        _fail(pointer, 'the integer %d' % FORMAT, value, shown=True)


def _ordered(*pairs):
    """The fields of an object in the order they are checked."""
    return OrderedDict(pairs)


# -- baseline.json ----------------------------------------------------------------------------------------------------
def _baseline_knob(entry, pointer, name):
    _object(entry, pointer, _ordered(
        ('path', _kernel_path),
        ('value', lambda value, where: _text(value, where, null=True)),
        ('recorded', _timestamp)))


def _baseline_file(entry, pointer, path):
    _object(entry, pointer, _ordered(
        ('existed', _boolean),
        ('content', lambda value, where: _text(value, where, null=True)),
        ('mode', _mode),
        ('missing_dirs', lambda value, where: _missing_dirs(value, where, path)),
        ('recorded', _timestamp)))
    if entry['existed']:
        if entry['content'] is None:
            _fail(_child(pointer, 'content'), 'a string, as "existed" is true', None)
        if entry['mode'] is None:
            _fail(_child(pointer, 'mode'), 'a file mode, as "existed" is true', None)
    else:
        for key in ('content', 'mode'):
            if entry[key] is not None:
                _fail(_child(pointer, key), 'null, as "existed" is false', entry[key], shown=True)


def _missing_dirs(value, pointer, path):
    """The directories the first write of ``path`` created, outermost first: each one above ``path``, and one a write
    may create (_fsio.may_create_dir)."""
    if not isinstance(value, list):
        _fail(pointer, 'an array', value)
    for index, directory in enumerate(value):
        where = _child(pointer, str(index))
        _string(directory, where, 'a directory path')
        try:
            check_path(directory)
        except FsError:
            _fail(where, 'an absolute path without empty, "." or ".." components', directory, shown=True)
        if _CONTROL.search(directory) or not may_create_dir(directory) or not path.startswith(directory + '/'):
            _fail(where, 'a directory above %s that aitune.kernel may create' % path, directory, shown=True)


def _baseline_dir(entry, pointer, path):
    _object(entry, pointer, _ordered(('subsystem', _matching(SUBSYSTEM, 'a subsystem name')),
                                     ('recorded', _timestamp)))


def _check_baseline(document):
    _object(document, '', _ordered(
        ('format', _format),
        ('knobs', _table(_knob_name, _baseline_knob)),
        ('files', _table(_config_path, _baseline_file))),
        optional=_ordered(
            ('created', _timestamp),
            ('dirs', _table(lambda pointer, key: _path(key, pointer, KERNEL_ROOTS, 'a kernel directory'),
                            _baseline_dir))))


# -- state.json -------------------------------------------------------------------------------------------------------
def _state_knob(entry, pointer, name):
    _object(entry, pointer, _ordered(
        ('subsystem', _matching(SUBSYSTEM, 'a subsystem name')),
        ('path', lambda value, where: _path(value, where, KERNEL_ROOTS, 'a kernel file', blank=False)),
        ('value', lambda value, where: _line(value, where, null=True)),
        ('persist', _persist_kind),
        ('applied_at', _timestamp)))
    if entry['persist'] == 'sysctl' and not entry['path'].startswith(SYSCTL_ROOT):
        _fail(_child(pointer, 'path'), 'a file below %s, as it persists through sysctl.d' % SYSCTL_ROOT.rstrip('/'),
              entry['path'], shown=True)
    if entry['persist'] == 'modprobe':
        # The modprobe.d line is made of the module's and the parameter's names and the value; a blank in the value
        # would start another parameter on it.
        if not MODULE_PARAM_PATH.match(entry['path']):
            _fail(_child(pointer, 'path'), 'a module parameter /sys/module/<module>/parameters/<parameter>, as it '
                  'persists through modprobe.d', entry['path'], shown=True)
        if entry['value'] is not None and _BLANK_OR_CONTROL.search(entry['value']):
            _fail(_child(pointer, 'value'), 'a value without blanks, as it persists through modprobe.d',
                  entry['value'], shown=True)


def _persist_kind(value, pointer):
    if not (value is None or isinstance(value, str) and value in PERSIST_KINDS):
        _fail(pointer, 'one of %s' % ', '.join(json.dumps(kind) for kind in PERSIST_KINDS), value, shown=True)


def _cmdline_entry(entry, pointer, owner):
    _object(entry, pointer, _ordered(
        ('subsystem', _matching(SUBSYSTEM, 'a subsystem name')),
        ('params', _boot_params)))


def _boot_params(value, pointer):
    if not isinstance(value, list):
        _fail(pointer, 'an array', value)
    for index, param in enumerate(value):
        _matching(BOOT_PARAM, 'a boot parameter of letters, digits and _ . , : = + / @ -')(
            param, _child(pointer, str(index)))


def _owned_entry(entry, pointer, key):
    _object(entry, pointer, _ordered(
        ('subsystem', _matching(SUBSYSTEM, 'a subsystem name')),
        ('content', _text)))


def _check_state(document, owned_file_kind, unit_dir):
    def owned_path(pointer, path):
        _config_path(pointer, path)
        if owned_file_kind(path) is None:
            raise _Bad(pointer, 'is not a file a subsystem may own (a systemd unit or drop-in, a udev rule, the '
                                'irqbalance settings, a local fact)')

    def unit_name(pointer, name):
        # Early states kept units by name, in the unit directory.
        if '/' in name or owned_file_kind('%s/%s' % (unit_dir, name)) is None:
            raise _Bad(pointer, 'is not a systemd unit name')

    _object(document, '', _ordered(('format', _format)), optional=_ordered(
        ('knobs', _table(_knob_name, _state_knob)),
        ('cmdline', _table(lambda pointer, owner: _matching(CMDLINE_OWNER, 'an owner name')(owner, pointer),
                           _cmdline_entry)),
        ('files', _table(owned_path, _owned_entry)),
        ('units', _table(unit_name, _owned_entry))))


# -- the run lease (_lease.Lease) -------------------------------------------------------------------------------------
def _positive_int(value, pointer):
    if not _is_int(value) or value <= 0:
        _fail(pointer, 'a positive integer', value, shown=isinstance(value, (int, float)))


def _check_lease(document, patterns):
    checks = {key: _matching(pattern, expected) for key, (pattern, expected) in patterns.items()}
    _object(document, '', _ordered(
        ('format', _format),
        ('run_id', checks['run_id']),
        ('purpose', checks['purpose']),
        ('controller', checks['controller']),
        ('controller_pid', _positive_int),
        ('started', _positive_int),
        ('ttl', _positive_int),
        ('expires', _positive_int),
        ('boot_id', checks['boot_id'])), optional=_ordered(
        ('job', checks['job'])))


# -- entry points -----------------------------------------------------------------------------------------------------
def _refuse(path, bad):
    where = bad.pointer or 'the document'
    return StateFileError(path, '%s: %s %s; %s' % (path, where, bad.problem, move_aside(path)))


def check_baseline(document, path):
    """Raise StateFileError naming ``path`` and the first bad field unless ``document`` is a baseline as
    _baseline.Baseline writes it."""
    try:
        _check_baseline(document)
    except _Bad as bad:
        raise _refuse(path, bad)


def check_state(document, path, owned_file_kind, unit_dir):
    """Raise StateFileError naming ``path`` and the first bad field unless ``document`` is a state as _persist.State
    writes it. ``owned_file_kind(path)`` is None for a path no subsystem may own; ``unit_dir`` is where the units of
    early states (kept by name) live."""
    try:
        _check_state(document, owned_file_kind, unit_dir)
    except _Bad as bad:
        raise _refuse(path, bad)


def parse(text, path):
    """The JSON document in ``text``, or StateFileError."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StateFileError(path, '%s: not valid JSON (%s); %s' % (path, exc, move_aside(path)))


def check_lease(document, path, patterns):
    """Raise StateFileError naming ``path`` and the first bad field unless ``document`` is a run lease as
    _lease.Lease writes it; ``patterns`` maps each of its text fields to (regex, what it must be)."""
    try:
        _check_lease(document, patterns)
    except _Bad as bad:
        raise _refuse(path, bad)
