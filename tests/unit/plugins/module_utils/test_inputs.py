# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Inputs every module shares: how ``root`` is read, and how much of a refused value a message shows."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _run
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import (
    FAKE_ROOT_MARKER, HostFS, is_real_root, normalize_root, root_refusal)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import shown
from ansible_collections.aitune.kernel.plugins.module_utils._module import capped_message
from ansible_collections.aitune.kernel.plugins.modules import irq
from ansible_collections.aitune.kernel.tests.unit.irqtree import irq_host
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module


# -- root --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('root, normal, real', [
    ('/', '/', True), ('//', '/', True), ('/.', '/', True), ('///', '/', True), ('/./', '/', True),
    ('//./', '/', True), ('/tmp/..', '/', True), ('/srv/fake', '/srv/fake', False), ('//srv//fake/', '/srv/fake', False),
])
def test_root_spellings(root, normal, real):
    assert normalize_root(root) == normal
    assert HostFS(root).root == normal
    assert is_real_root(root) is real


def test_a_symlink_to_the_real_root_is_the_real_root(tmp_path):
    link = tmp_path / 'host'
    os.symlink('/', str(link))
    assert is_real_root(str(link)) and not is_real_root(str(tmp_path))


class _Module(object):
    check_mode = False

    def __init__(self, root):
        self.params = {'root': root}

    def get_bin_path(self, name, *args, **kwargs):
        return '/usr/bin/' + name

    def warn(self, message):
        raise AssertionError('unexpected warning: %s' % message)


@pytest.mark.parametrize('root', ['/', '//', '/.'])
def test_open_engine_treats_every_spelling_of_the_real_root_as_the_host(monkeypatch, root):
    # The real-root side effects are stood in for; nothing here reads or writes the real host.
    opened = {}
    monkeypatch.setattr(_run, 'systemd_is_init', lambda fs: True)
    monkeypatch.setattr(_run, 'udev_is_running', lambda fs: True)
    monkeypatch.setattr(_run, 'Udevadm', lambda module, binary: ('udevadm', binary))
    monkeypatch.setattr(_run, 'CommandMounter', lambda module: 'mounter')
    monkeypatch.setattr(_run, 'Engine', lambda **kwargs: opened.update(kwargs) or 'engine')

    class Systemctl(object):
        def __init__(self, module):
            self.module = module

    assert _run.open_engine(_Module(root), systemctl_class=Systemctl) == 'engine'
    assert opened['root'] == '/' and opened['fs'].root == '/'
    assert isinstance(opened['systemctl'], Systemctl)
    assert opened['udevadm'] == ('udevadm', '/usr/bin/udevadm')
    assert opened['mounter'] == 'mounter'


def test_open_engine_on_a_fake_tree_runs_nothing(monkeypatch, tmp_path):
    opened = {}
    monkeypatch.setattr(_run, 'systemd_is_init', lambda fs: True)
    monkeypatch.setattr(_run, 'udev_is_running', lambda fs: True)
    monkeypatch.setattr(_run, 'Engine', lambda **kwargs: opened.update(kwargs) or 'engine')
    _run.open_engine(_Module(str(tmp_path) + '//.'))
    assert opened['root'] == str(tmp_path)
    assert opened['systemctl'] is None and opened['udevadm'] is None and opened['mounter'] is None


# -- echoed values -----------------------------------------------------------------------------------------------------
def test_shown_cuts_a_long_value_and_says_its_size():
    assert shown('0-3') == "'0-3'"
    text = shown('x' * (1 << 20))
    assert text == "'%s... (1048576 characters)" % ('x' * 79) and len(text) < 120
    assert shown(list(range(1000))).endswith('... (1000 items)')
    assert capped_message('m' * 9000).endswith('... (9000 characters)')


def test_a_one_megabyte_option_is_not_echoed_whole(make_host):
    host = irq_host(make_host)
    before = host.snapshot()
    code, result = run_module(irq, {'root': host.root, 'devices': ['nvme*'], 'housekeeping_cpus': '9' * (1 << 20)})
    assert code == 1, result
    assert 'housekeeping_cpus' in result['msg'] and '(1048576 characters)' in result['msg']
    assert len(result['msg']) < 600
    code, result = run_module(irq, {'root': host.root, 'devices': ['n;' * (1 << 19)]})
    assert code == 1 and len(result['msg']) < 600 and '(1048576 characters)' in result['msg'], result['msg'][:300]
    assert host.snapshot() == before


# -- only a fake tree may stand for / ----------------------------------------------------------------------------------
def test_the_real_root_needs_no_marker():
    for root in ('/', '//', '/.'):
        assert root_refusal(root) is None


def test_a_root_without_the_marker_is_refused_before_anything_is_read(tmp_path, make_host):
    host = make_host('6.12')
    assert root_refusal(host.root) is None
    plain = tmp_path / 'plain'
    plain.mkdir()
    assert 'is not a fake tree: it has no %s file' % FAKE_ROOT_MARKER in root_refusal(str(plain))
    assert 'the fake tree it names is missing' in root_refusal(str(tmp_path / 'gone'))
    (plain / FAKE_ROOT_MARKER).mkdir()
    assert 'is not a regular file' in root_refusal(str(plain))
    link = tmp_path / 'host'
    os.symlink('/', str(link))
    assert 'leads to this host\'s / through a symlink' in root_refusal(str(link))


@pytest.mark.parametrize('module_name', ['sched', 'profile', 'restore', 'tuning_facts', 'lease'])
def test_every_module_refuses_a_root_that_is_not_a_fake_tree(tmp_path, module_name):
    import importlib
    module = importlib.import_module('ansible_collections.aitune.kernel.plugins.modules.%s' % module_name)
    tree = tmp_path / 'tree'
    (tree / 'proc' / 'sys' / 'vm').mkdir(parents=True)
    (tree / 'proc' / 'sys' / 'vm' / 'swappiness').write_text('60\n')
    before = sorted(str(path) for path in tmp_path.rglob('*'))
    args = {'root': str(tree)}
    if module_name == 'lease':
        args.update(purpose='test', run_id='0' * 32, controller='test', controller_pid=1)
    if module_name == 'profile':
        args.update(subsystems={'memory': {'swappiness': 10}})
    code, result = run_module(module, args)
    assert code != 0 and result['failed']
    assert result['msg'] == 'root %s is not a fake tree: it has no %s file. Leave root at / on a real host; only the ' \
        'unit tests and tools/fleet make fake trees' % (tree, FAKE_ROOT_MARKER), result['msg']
    assert sorted(str(path) for path in tmp_path.rglob('*')) == before
