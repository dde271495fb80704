#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: lease
short_description: Hold a host for one whole tune, restore or benchmark run
version_added: 0.1.0
description:
  - A run of C(tune.yml), C(restore.yml) or C(benchmark.yml) is many module calls. Each call holds the host lock only
    while it runs, so another run's calls could slip in between them. The run lease closes that gap. The first task of
    a run takes it, the last one gives it back (in an C(always) section), and every call of the collection that writes
    checks it.
  - The lease is the file C(/run/aitune/lease.json). It names the run that holds the host, with its id, its purpose,
    its start time, the controller and the controller's PID, and the AWX job. It is trusted only when root's.
  - With O(state=acquired), the module waits up to O(wait) seconds while another run holds the host, then fails
    before writing, naming the holder. The run that holds the lease may take it again, which renews it.
  - Each call of the run pushes the expiry O(ttl) seconds further. A lease that outlives its run (a killed controller)
    therefore expires. A lease also ends when its controller process is gone (a controller on this host) or the host
    rebooted (C(/run) is emptied at boot). The run that takes the host next reports it in RV(expired) and in a
    warning.
  - With O(state=released), the module removes the lease when the run O(run_id) holds it, and leaves any other lease
    alone.
  - The lease is the run's bookkeeping, not a setting of the host, so the module never reports a change. A second run
    of a playbook still reports 0 changed.
  - The action plugin of the same name fills in O(run_id) (a new random id when taking the lease), O(controller) and
    O(controller_pid) on the controller.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
options:
  state:
    description:
      - V(acquired) takes the host (or renews the lease of the run that holds it), V(released) gives it back.
    type: str
    default: acquired
    choices: [acquired, released]
  run_id:
    description:
      - The run's id, 8 to 64 letters, digits, C(.), C(_), C(:) or C(-). Give the modules of the run the same id as
        their O(aitune.kernel.profile#module:run_id).
      - The action plugin draws a new one when the lease is taken without it. It is required with O(state=released).
    type: str
  purpose:
    description:
      - What the run does, for whoever finds the host held, for example V(tune balanced) or V(restore all). Up to 64
        lower-case letters, digits, blanks and C(.,:_-).
      - Required with O(state=acquired).
    type: str
  controller:
    description:
      - The host name of the controller that runs the playbook. The action plugin sets it.
    type: str
    default: unknown
  controller_pid:
    description:
      - The PID of the controller's C(ansible-playbook) process. The action plugin sets it.
    type: int
    default: 1
  job:
    description:
      - The AWX or automation controller job id, when the run is one. The playbooks pass C(awx_job_id).
    type: str
  wait:
    description:
      - How long, in seconds, to wait for another run's lease to go before failing (0 to 3600).
    type: int
    default: 60
  ttl:
    description:
      - How long, in seconds, the lease lasts after the last call of its run (60 to 604800).
      - Longer than the longest step of the run. A benchmark arm measures between two calls.
    type: int
    default: 3600
attributes:
  action:
    description: Runs on the controller first, to fill in the run id, the controller and its PID.
    support: full
  check_mode:
    description: Can run in check mode. Nothing is written, and a warning names the run that holds the host.
    support: full
  diff_mode:
    description: The lease is bookkeeping and has no diff.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: linux
notes:
  - Without root nothing is written. The run holds no lease and RV(reason) says so.
seealso:
  - module: aitune.kernel.profile
  - module: aitune.kernel.restore
'''

EXAMPLES = r'''
- name: Hold the host for this run
  aitune.kernel.lease:
    purpose: tune balanced
    job: "{{ awx_job_id | default(omit) }}"
  register: aitune_run_lease

- name: Tune under the lease, and give it back whatever happens
  block:
    - name: Apply the profile
      aitune.kernel.profile:
        subsystems:
          sched: {autogroup: false}
        run_id: "{{ aitune_run_lease.run_id }}"
  always:
    - name: Give the host back
      aitune.kernel.lease:
        state: released
        run_id: "{{ aitune_run_lease.run_id }}"
'''

RETURN = r'''
run_id:
  description: The run's id, to pass to the run's other calls and to the release.
  returned: always
  type: str
  sample: 5f0c2d6e9b8a4f3e8d7c6b5a49382716
held:
  description: True when the run holds the host now (after O(state=acquired), outside check mode and as root).
  returned: always
  type: bool
holder:
  description: The lease as it stands, with C(run_id), C(purpose), C(controller), C(controller_pid), C(started) and
    C(expires) (seconds since the epoch), C(ttl), C(boot_id) and C(job); null when there is none. After a release, the
    lease of another run that holds the host, if any.
  returned: always
  type: dict
expired:
  description: The lease of a run that was gone when this one took the host, with C(why) it no longer held it; null
    when there was none.
  returned: when O(state=acquired)
  type: dict
released:
  description: True when the release removed this run's lease.
  returned: when O(state=released)
  type: bool
reason:
  description: Why nothing was written (check mode, or no root).
  returned: when nothing was written
  type: str
'''

from ansible_collections.aitune.kernel.plugins.module_utils._lease_run import ARGUMENT_SPEC, REQUIRED_IF, run_lease
from ansible_collections.aitune.kernel.plugins.module_utils._module import build_module
from ansible_collections.aitune.kernel.plugins.module_utils._run import ENGINE_ERRORS


def main():
    module = build_module(ARGUMENT_SPEC, apply_options=False, required_if=REQUIRED_IF)
    try:
        result = run_lease(module)
    except ENGINE_ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
