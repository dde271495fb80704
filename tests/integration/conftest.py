# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Run the collection's real modules against this machine's real kernel through ansible-playbook.

These tests change live kernel values and /etc files, then put everything back. They need root; without it they
skip, saying so loudly.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        marker = pytest.mark.skip(reason='LOUD SKIP: the local-kernel integration tests need root')
        for item in items:
            item.add_marker(marker)


class ModuleRunner(object):
    """One module call per run, through ansible-playbook on localhost; a second task saves the registered result."""

    def __init__(self, tmpdir):
        self.tmpdir = str(tmpdir)

    def __call__(self, module, args=None, check=False, env=None, expect_failure=False):
        result_path = os.path.join(self.tmpdir, 'result.json')
        if os.path.exists(result_path):
            os.unlink(result_path)
        tasks = [
            {'name': 'Run the module', module: args or {}, 'register': 'result', 'check_mode': check, 'diff': True,
             'ignore_errors': expect_failure},
            {'name': 'Save the result', 'check_mode': False,
             'ansible.builtin.copy': {'content': '{{ result | to_json }}', 'dest': result_path, 'mode': '0600'}},
        ]
        play_path = os.path.join(self.tmpdir, 'play.yml')
        with open(play_path, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle)
        environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'))
        environ.update(env or {})
        proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), play_path], cwd=REPO, env=environ,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300, check=False)
        try:
            with open(result_path) as handle:
                result = json.load(handle)
        except (IOError, OSError, ValueError):
            raise AssertionError('no result from %s (rc=%d): %s %s' % (module, proc.returncode, proc.stdout, proc.stderr))
        if not expect_failure:
            assert proc.returncode == 0 and not result.get('failed'), result.get('msg')
        return result


@pytest.fixture
def run(tmp_path):
    return ModuleRunner(tmp_path)


def read_proc(path):
    with open(path) as handle:
        return handle.read().strip()


MANAGED = ('/etc/sysctl.d/90-aitune.conf', '/etc/tmpfiles.d/aitune.conf', '/etc/modprobe.d/90-aitune.conf',
           '/etc/default/grub.d/90-aitune.cfg', '/var/lib/aitune/baseline.json', '/var/lib/aitune/state.json')


def managed_files():
    """Managed files, and temp files a killed run left beside them."""
    found = [path for path in MANAGED if os.path.lexists(path)]
    for path in MANAGED:
        parent, leaf = os.path.split(path)
        if os.path.isdir(parent):
            found.extend(os.path.join(parent, name) for name in os.listdir(parent) if name.startswith('.%s.aitune-' % leaf))
    return found


# What the collection creates for itself and must remove again: its state directory (lock included), the run lease, its
# record, and the facts directories the record's first write creates where the host had none.
OWN = ('/var/lib/aitune', '/run/aitune', '/etc/ansible/facts.d/aitune.fact', '/etc/ansible/facts.d', '/etc/ansible')


def own_paths():
    return [path for path in OWN if os.path.lexists(path)]


@pytest.fixture(autouse=True)
def clean_host():
    """Each test starts and ends with no aitune state on the host; a leftover means an earlier run lost track. What the
    collection creates for itself is gone again at the end, and what the host had before is still there."""
    assert managed_files() == [], 'aitune state left on this host before the test: %s' % managed_files()
    before = own_paths()
    yield
    assert managed_files() == [], 'aitune state left on this host after the test: %s' % managed_files()
    assert own_paths() == before, 'the test left %s (before it: %s)' % (own_paths(), before)
