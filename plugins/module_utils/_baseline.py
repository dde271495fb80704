# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The baseline: each knob's original live value and each touched file's original content, recorded before the first
change and never overwritten afterwards. Restore reads it and drops what it has put back."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import (
    ABSENT, NOT_PERMITTED, FsError, may_create_dir)
from ansible_collections.aitune.kernel.plugins.module_utils._state_schema import FORMAT, check_baseline, parse

STATE_DIR = '/var/lib/aitune'
BASELINE_PATH = STATE_DIR + '/baseline.json'
# latency_bench's calibration (root's runs): the work per step every later run repeats. Restore removes it with the
# rest of the collection's own state.
CALIBRATION_PATH = STATE_DIR + '/bench-calibration.json'


def now_iso():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


class JsonStore(object):
    """A JSON document under /var/lib/aitune, written atomically with mode 0600 (it may hold file contents).

    Loading trusts it only when root alone can change it and the directory that holds it (HostFS.read_trusted), and
    only once its every field has the shape the collection writes (``check``, _state_schema): anything else raises
    FsError before any of it is used."""

    path = None
    empty = None

    def __init__(self, fs, before_rename=None):
        self.fs = fs
        self.before_rename = before_rename
        # Set when a user other than root cannot read the file (mode 0600): a preview goes on as if nothing were
        # recorded, and any attempt to save is refused.
        self.unreadable = None
        try:
            text = fs.read_trusted(self.path)
        except FsError as exc:
            # Only a missing file means "nothing recorded"; a planted symlink or an I/O error must stop the run.
            if exc.kind == NOT_PERMITTED and os.geteuid() != 0:
                self.unreadable = str(exc)
            elif exc.kind != ABSENT:
                raise
            text = None
        if text is None:
            self.data = self.empty()
            self.exists = False
        else:
            data = parse(text, self.path)
            self.check(data)
            self.data = data
            self.exists = True

    def check(self, document):
        """Raise FsError unless ``document`` has exactly the shape this file is written with."""
        raise NotImplementedError

    def save(self):
        """Write the document, or remove it once it holds nothing."""
        if self.unreadable:
            raise FsError(NOT_PERMITTED, self.path, 'refused to write %s: %s' % (self.path, self.unreadable))
        if self.is_empty():
            if self.exists:
                self.fs.remove_file(self.path)
                self.exists = False
            return
        text = json.dumps(self.data, indent=2, sort_keys=True) + '\n'
        self.fs.write_file_atomic(self.path, text, mode=0o600, before_rename=self.before_rename)
        self.exists = True


class Baseline(JsonStore):
    path = BASELINE_PATH

    @staticmethod
    def empty():
        return {'format': FORMAT, 'created': now_iso(), 'knobs': {}, 'files': {}, 'dirs': {}}

    def check(self, document):
        check_baseline(document, self.path)

    def is_empty(self):
        return not self.data['knobs'] and not self.data['files'] and not self.data.setdefault('dirs', {})

    # -- recording: first writer wins ----------------------------------------------------------------------------------
    def record_knob(self, name, path, value):
        """Record a knob's original value; returns False when an original is already on record."""
        if name in self.data['knobs']:
            return False
        self.data['knobs'][name] = {'path': path, 'value': value, 'recorded': now_iso()}
        return True

    def record_file(self, path, ours=False):
        """Record a file's original content (or its absence) before the collection first writes it. ``ours``: only
        the collection ever writes this file (its local fact), so its original is absence, whatever an earlier
        version of the collection left there."""
        if path in self.data['files']:
            return False
        existed, content, mode = (False, None, None) if ours else self.fs.file_state(path)
        # Directories the first write will create, outermost first: restore removes them again once empty.
        missing_dirs = []
        parent = path.rsplit('/', 1)[0]
        while parent and may_create_dir(parent) and not self.fs.lexists(parent):
            missing_dirs.insert(0, parent)
            parent = parent.rsplit('/', 1)[0]
        self.data['files'][path] = {'existed': existed, 'content': content, 'mode': mode,
                                    'missing_dirs': missing_dirs, 'recorded': now_iso()}
        return True

    def record_dir(self, path, subsystem):
        """Record a directory the collection is about to create (a cgroup), so restore removes it again."""
        dirs = self.data.setdefault('dirs', {})
        if path in dirs:
            return False
        dirs[path] = {'subsystem': subsystem, 'recorded': now_iso()}
        return True

    def dirs(self):
        return self.data.setdefault('dirs', {})

    def forget_dir(self, path):
        self.dirs().pop(path, None)

    # -- reading -------------------------------------------------------------------------------------------------------
    def knobs(self):
        return self.data['knobs']

    def files(self):
        return self.data['files']

    def forget_knob(self, name):
        self.data['knobs'].pop(name, None)

    def forget_file(self, path):
        self.data['files'].pop(path, None)
