# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The house is one-way: the files of plugins/ import each other without a cycle (imports inside functions count),
and every module_utils file works when it is the first and only thing a fresh interpreter imports, so no file
depends on another having been imported before it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import os
import subprocess
import sys

import pytest

PLUGINS = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'plugins'))
PACKAGE = 'ansible_collections.aitune.kernel.plugins'


def plugin_files():
    """``{dotted name below plugins: path}`` for every Python file of plugins/."""
    files = {}
    for directory, _subdirs, names in os.walk(PLUGINS):
        for name in names:
            if name.endswith('.py') and name != '__init__.py':
                path = os.path.join(directory, name)
                files[os.path.relpath(path, PLUGINS)[:-3].replace(os.sep, '.')] = path
    return files


def imports_of(path, known):
    """The files of plugins/ that ``path`` imports, wherever the import statement stands."""
    found = set()
    with open(path) as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE + '.'):
            target = node.module[len(PACKAGE) + 1:]
            if target in known:
                found.add(target)
            # "from ...module_utils import _cpufreq": the names are modules themselves.
            found.update('%s.%s' % (target, alias.name) for alias in node.names if '%s.%s' % (target, alias.name) in known)
        elif isinstance(node, ast.Import):
            found.update(alias.name[len(PACKAGE) + 1:] for alias in node.names
                         if alias.name.startswith(PACKAGE + '.') and alias.name[len(PACKAGE) + 1:] in known)
    return found


def cycles(graph):
    """Every strongly connected group of more than one file, or one file that imports itself (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                group.append(other)
                if other == node:
                    break
            if len(group) > 1 or node in graph[node]:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    # The test below can only fail if this one can see a cycle at all.
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert cycles({'a': {'a'}}) == [['a']]
    assert cycles({'a': {'b'}, 'b': set()}) == []


def test_plugins_import_each_other_without_a_cycle():
    files = plugin_files()
    graph = {name: imports_of(path, files) for name, path in files.items()}
    assert any(graph.values()), 'no import between the plugin files was found: the walk is broken'
    assert cycles(graph) == []


@pytest.mark.parametrize('name', sorted(name for name in plugin_files() if name.startswith('module_utils.')))
def test_each_module_util_imports_alone_in_a_fresh_interpreter(name):
    # The collection's import path as this test run has it (ansible-test's, or conftest's link to the checkout).
    roots = [entry for entry in sys.path if os.path.isdir(os.path.join(entry, 'ansible_collections', 'aitune'))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(roots + [os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, '-c', 'import importlib, sys; importlib.import_module(sys.argv[1])',
                           '%s.%s' % (PACKAGE, name)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
