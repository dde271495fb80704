# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Run a module's real ``main()`` in-process, the way Ansible's own unit tests do, and return its JSON result."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import io
import json

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as module_warnings

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19
    patch_module_args = None


@contextlib.contextmanager
def _module_args(args):
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    saved = basic._ANSIBLE_ARGS
    basic._ANSIBLE_ARGS = json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode('utf-8')
    try:
        yield
    finally:
        basic._ANSIBLE_ARGS = saved


def run_module(module, args, check_mode=False, diff=False):
    """``(exit code, result dict)`` of ``module.main()`` called with ``args``."""
    args = dict(args)
    args['_ansible_check_mode'] = check_mode
    args['_ansible_diff'] = diff
    # A module runs in a fresh process, where no warning of an earlier run is pending: Ansible keeps them in globals.
    for pending in (module_warnings._global_warnings, module_warnings._global_deprecations):
        pending.clear()
    out = io.StringIO()
    code = None
    with _module_args(args), contextlib.redirect_stdout(out):
        try:
            module.main()
        except SystemExit as exc:
            code = exc.code
    if code is None:
        raise AssertionError('the module returned without exit_json or fail_json')
    text = out.getvalue().strip()
    return code, json.loads(text.splitlines()[-1])
