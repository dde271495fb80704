# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Shared fixtures. ``ansible-test units`` puts the collection on the path itself; a plain ``pytest`` run from the
checkout finds it through PYTHONPATH, or failing that through a throw-away ``ansible_collections/aitune/kernel`` link
to this checkout."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import sys
import tempfile

try:
    import ansible_collections.aitune.kernel.plugins.module_utils._fsio  # noqa: F401 pylint: disable=unused-import
except ImportError:
    _LINKS = tempfile.mkdtemp(prefix='aitune-collections-')
    os.makedirs(os.path.join(_LINKS, 'ansible_collections', 'aitune'))
    os.symlink(os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')),
               os.path.join(_LINKS, 'ansible_collections', 'aitune', 'kernel'))
    sys.path.insert(0, _LINKS)
    for _name in [name for name in sys.modules if name == 'ansible_collections' or name.startswith('ansible_collections.')]:
        del sys.modules[_name]

import pytest  # noqa: E402 pylint: disable=wrong-import-position

from ansible_collections.aitune.kernel.tests.unit.cputree import make_cpu_host  # noqa: E402 pylint: disable=wrong-import-position
from ansible_collections.aitune.kernel.tests.unit.fakehost import FakeHost  # noqa: E402 pylint: disable=wrong-import-position


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The temporary directory the benchmark makes its scratch directory in, to check that nothing is left there."""
    directory = tmp_path / 'tmp'
    directory.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(directory))
    return directory


@pytest.fixture
def make_host(tmp_path, monkeypatch):
    """``make_host(kernel, nodes=1, debugfs_mounted=None, files=None)``: a fake host with its kernel emulation live."""
    count = [0]

    def factory(kernel='6.12', **kwargs):
        count[0] += 1
        host = FakeHost(tmp_path / ('host%d' % count[0]), kernel=kernel, **kwargs)
        host.kernel.install(monkeypatch.setattr)
        return host

    return factory


@pytest.fixture
def cpu_host(make_host, monkeypatch):
    """``cpu_host(*trees, kernel='6.12')``: a fake host with the named CPU trees (cpufreq, cpuidle) and their kernel."""
    return lambda *trees, **kwargs: make_cpu_host(make_host, monkeypatch.setattr, *trees, **kwargs)
