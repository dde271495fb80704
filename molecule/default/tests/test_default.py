# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""The balanced mode on CFS (6.1); molecule/resources/tests/test_mode_applied.py reads what the mode promises from the
kernel."""


def test_kernel_is_6_1(host):
    assert host.sysctl("kernel.osrelease").startswith("6.1.")
