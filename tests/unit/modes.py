# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The modes as the roles hand them to aitune.kernel.profile, read from the roles' own defaults, so a test of a mode
tests the data the roles ship rather than a copy of it.

A mode's role layers the modes below it (roles/<mode>/tasks/main.yml) and the tune role merges the layers with
``combine(recursive=True)``. The defaults are rendered as on a host whose inventory sets no aitune_* variable, with
Jinja's native types and chainable undefined variables, as Ansible renders them. Jinja, not Ansible's templar: loading
Ansible's controller side changes how modules run in the same process collect their warnings (see
plugins/filter/summary.py), and the unit tests run modules in process.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import yaml
from jinja2 import ChainableUndefined
from jinja2.nativetypes import NativeEnvironment

ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'roles')
LAYERS = {
    'conservative': ('conservative',),
    'balanced': ('conservative', 'balanced'),
    'aggressive': ('conservative', 'balanced', 'aggressive'),
}
_JINJA = NativeEnvironment(undefined=ChainableUndefined)


def _rendered(value):
    if isinstance(value, dict):
        return {key: _rendered(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rendered(item) for item in value]
    if isinstance(value, str) and '{{' in value:
        return _JINJA.from_string(value).render()
    return value


def _combined(base, layer):
    """Ansible's ``combine(recursive=True)``: mappings merge key by key, anything else the later layer replaces."""
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _combined(merged[key], value)
        else:
            merged[key] = value
    return merged


def mode_profile(mode):
    """The ``subsystems`` the tune role passes to aitune.kernel.profile for ``mode``."""
    merged = {}
    for layer in LAYERS[mode]:
        with open(os.path.join(ROLES_DIR, layer, 'defaults', 'main.yml')) as handle:
            defaults = yaml.safe_load(handle)
        merged = _combined(merged, _rendered(defaults['%s_profile' % layer]))
    return merged
