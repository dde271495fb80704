# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The YAML case tables the unit tests are parametrised with, kept as data in plugins/module_utils/cases."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import yaml

CASES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'plugins', 'module_utils', 'cases')


def load_cases(name):
    with open(os.path.join(CASES_DIR, name)) as handle:
        return yaml.safe_load(handle)
