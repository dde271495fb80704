# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""CFS (6.1): the guest boots the kernel this scenario is about; molecule/resources/tests/test_engine_applied.py
checks the applied values and the CFS knob layout."""


def test_kernel_is_6_1(host):
    assert host.sysctl("kernel.osrelease").startswith("6.1.")
