# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The lease module's work: take the host for a run, or give it back (_lease holds the file and its rules)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._lease import (
    MAX_TTL, MAX_WAIT, MIN_TTL, Lease, LeaseCheck, boot_id, check_field, remove_lease, write_lease)
from ansible_collections.aitune.kernel.plugins.module_utils._lock import HostLock

ARGUMENT_SPEC = dict(
    state=dict(type='str', default='acquired', choices=['acquired', 'released']),
    run_id=dict(type='str'),
    purpose=dict(type='str'),
    controller=dict(type='str', default='unknown'),
    controller_pid=dict(type='int', default=1),
    job=dict(type='str'),
    wait=dict(type='int', default=60),
    ttl=dict(type='int', default=3600),
)
REQUIRED_IF = [('state', 'acquired', ('purpose',))]


class LeaseInputError(ValueError):
    """A bad option: nothing was read or written."""


def check_options(params):
    if params['run_id'] is None:
        raise LeaseInputError('run_id is required: the action plugin of aitune.kernel.lease draws one when the lease is '
                              'taken, and the release needs the one it returned')
    for name in ('run_id', 'purpose', 'controller', 'job'):
        if params.get(name) is not None:
            expected = check_field(name, params[name])
            if expected:
                raise LeaseInputError('%s must be %s' % (name, expected))
    if not 0 <= params['wait'] <= MAX_WAIT:
        raise LeaseInputError('wait must be between 0 and %d seconds, got %d' % (MAX_WAIT, params['wait']))
    if not MIN_TTL <= params['ttl'] <= MAX_TTL:
        raise LeaseInputError('ttl must be between %d and %d seconds, got %d' % (MIN_TTL, MAX_TTL, params['ttl']))
    if params['controller_pid'] <= 0:
        raise LeaseInputError('controller_pid must be a positive integer, got %d' % params['controller_pid'])


def _gone(check):
    if check.gone is None:
        return None
    lease, why = check.gone
    return dict(lease.holder(), why=why)


def acquire(params, check_mode, warn):
    """Take the host for the run ``run_id`` (again, for a run that holds it: the expiry is renewed). Waits up to
    ``wait`` seconds for another run's lease to go; returns the result keys."""
    fs = HostFS(params['root'])
    result = dict(changed=False, run_id=params['run_id'], held=False, expired=None, holder=None)
    if check_mode or os.geteuid() != 0:
        # Nothing is written: say who would be in the way.
        check = LeaseCheck(fs, params['run_id'])
        if check.blocking is not None:
            warn('another aitune run holds this host now: %s' % check.blocking.describe(check.now))
        result.update(expired=_gone(check), holder=check.lease.holder() if check.lease else None,
                      reason='check mode: nothing is written' if check_mode else
                      'without root nothing is written, so the run holds no lease')
        return result
    with HostLock(fs, timeout=params['wait'], run_id=params['run_id']) as lock:
        check = lock.lease
        if check.own is not None:
            lease = check.own
        else:
            lease = Lease(params['run_id'], params['purpose'], params['controller'], params['controller_pid'],
                          check.now, params['ttl'], check.now + params['ttl'], boot_id(fs), job=params['job'])
            write_lease(fs, lease)
        expired = _gone(check)
        if expired is not None:
            warn('took over the lease of run %s (%s, controller %s PID %d): %s'
                 % (expired['run_id'], expired['purpose'], expired['controller'], expired['controller_pid'],
                    expired['why']))
    result.update(held=True, holder=lease.holder(), expired=expired)
    return result


def release(params, check_mode):
    """Give the host back: remove the lease when the run ``run_id`` holds it; any other lease stays."""
    fs = HostFS(params['root'])
    result = dict(changed=False, run_id=params['run_id'], held=False, released=False, holder=None)
    if check_mode or os.geteuid() != 0:
        return result
    # The lease check of the lock itself would wait for another run's lease; here that lease is simply not ours.
    with HostLock(fs, timeout=params['wait'], run_id=params['run_id'], check_lease=False):
        check = LeaseCheck(fs, params['run_id'])
        if check.lease is not None and check.lease.run_id == params['run_id']:
            remove_lease(fs)
            result['released'] = True
        elif check.lease is not None:
            result['holder'] = check.lease.holder()
    return result


def run_lease(module):
    params = module.params
    check_options(params)
    if params['state'] == 'released':
        return release(params, module.check_mode)
    return acquire(params, module.check_mode, module.warn)
