# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""Offline checks of tools/lab/faults.py (no qemu, no network): python3 -m pytest tools/lab/test_faults.py

The agent is run here against a stand-in process of this test's own, matched by a file name no Ansible module has, with
the kernel command line and the sysrq trigger pointed at files: it never signals anything else and never resets."""

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faults  # noqa: E402

STAND_IN = "AnsiballZ_labtest_standin.py"


# -- the plan ----------------------------------------------------------------------------------------------------------
def test_plan_is_seeded_and_stratified():
    planned = faults.plan(7, "g", {"kill": 10, "reset": 3})
    assert planned == faults.plan(7, "g", {"kill": 10, "reset": 3})
    assert planned != faults.plan(8, "g", {"kill": 10, "reset": 3})
    assert [p.kind for p in planned] == ["kill"] * 10 + ["reset"] * 3
    for kind, n in (("kill", 10), ("reset", 3)):
        mine = [p for p in planned if p.kind == kind]
        # One moment in each n-th of the run time, and within it.
        assert sorted(p.stratum for p in mine) == list(range(n))
        assert all(p.strata == n and p.stratum / n <= p.fraction < (p.stratum + 1) / n for p in mine)


def test_plan_of_a_guest_does_not_depend_on_the_others_or_on_the_other_kind():
    assert faults.plan(3, "a", {"kill": 4}) == faults.plan(3, "a", {"kill": 4, "reset": 0})
    assert faults.plan(3, "a", {"kill": 4}) != faults.plan(3, "b", {"kill": 4})
    kills = [p for p in faults.plan(3, "a", {"kill": 4, "reset": 2}) if p.kind == "kill"]
    assert kills == faults.plan(3, "a", {"kill": 4})


def test_plan_order_is_shuffled_not_ascending_for_some_seed():
    orders = {tuple(p.stratum for p in faults.plan(seed, "g", {"kill": 6})) for seed in range(20)}
    assert len(orders) > 1


def test_each_kind_alternates_recovery_paths_from_the_guests_start():
    for first in (0, 1):
        planned = faults.plan(5, "g", {"kill": 3, "reset": 2}, first)
        for kind in faults.KINDS:
            paths = [p.recovery for p in planned if p.kind == kind]
            assert paths == [faults.RECOVERIES[(i + first) % 2] for i in range(len(paths))]
    # One reset per guest: the two guests' starts differ, so both paths follow a reset in the run.
    resets = [p.recovery for first, guest in enumerate(("a", "b"))
              for p in faults.plan(5, guest, {"kill": 2, "reset": 1}, first) if p.kind == "reset"]
    assert sorted(resets) == sorted(faults.RECOVERIES)
    # The moments do not depend on the paths.
    assert ([(p.kind, p.stratum, p.fraction) for p in faults.plan(5, "g", {"kill": 3}, 0)]
            == [(p.kind, p.stratum, p.fraction) for p in faults.plan(5, "g", {"kill": 3}, 1)])


@pytest.mark.parametrize(("recovery", "outcome", "recovered"), [
    ("restore", {"restore_exact": True}, True),
    ("restore", {"restore_exact": False}, False),
    # A tune path is judged by the convergence and the exact restore after it, not by a restore it never ran.
    ("tune", {"converged": True, "final_exact": True}, True),
    ("tune", {"converged": False, "final_exact": True}, False),
    ("tune", {"converged": True, "final_exact": False}, False),
    ("tune", {"restore_exact": True}, False),
])
def test_a_fault_is_recovered_by_its_own_path(recovery, outcome, recovered):
    fault = faults.Fault("kill", 0, 1, 0.5, recovery, landed=True, **outcome)
    assert fault.recovered is recovered
    assert faults.Fault("kill", 0, 1, 0.5, recovery, landed=False, restore_exact=True, converged=True,
                        final_exact=True).recovered is False


def test_a_recovery_that_is_not_exact_stops_the_campaign():
    fault = faults.Fault("reset", 0, 1, 0.5, "restore")
    faults.Campaign.back_at_start(fault, True, [], "restore after the fault")
    assert fault.error is None
    with pytest.raises(faults.Failed, match="sysctl.x: '1' -> '2'"):
        faults.Campaign.back_at_start(fault, False, ["sysctl.x: '1' -> '2'"], "restore after the fault")
    assert fault.error == "restore after the fault differs from the pre-apply snapshot"


def test_plan_refuses_negative_counts():
    with pytest.raises(ValueError):
        faults.plan(1, "g", {"kill": -1})


def test_moment_ms():
    assert faults.moment_ms(0.5, 20000) == 10000
    assert faults.moment_ms(0.0, 20000) == 0
    assert faults.moment_ms(0.99999, 1000) == 999


@pytest.mark.parametrize(("value", "expected"), [
    ({"kill": 4, "reset": 2}, {"kill": 4, "reset": 2}),
    ({"kill": 3}, {"kill": 3, "reset": 0}),
    ({}, {"kill": 0, "reset": 0}),
])
def test_parse_counts(value, expected):
    assert faults.parse_counts(value, "g") == expected


@pytest.mark.parametrize("value", [[], {"kill": -1}, {"kill": "3"}, {"kill": True}, {"crash": 1}, None])
def test_parse_counts_refuses(value):
    with pytest.raises(ValueError, match="lab_faults"):
        faults.parse_counts(value, "g")


# -- the comparison ----------------------------------------------------------------------------------------------------
def test_differences_name_every_changed_added_and_removed_entry():
    before = {"sysctl": {"/proc/sys/vm/swappiness": "60", "/proc/sys/vm/x": "1"}, "files": {}, "list": [1]}
    after = {"sysctl": {"/proc/sys/vm/swappiness": "10", "/proc/sys/vm/y": "2"}, "files": {}, "list": [1]}
    assert faults.differences(before, after) == [
        "sysctl./proc/sys/vm/swappiness: '60' -> '10'",
        "sysctl./proc/sys/vm/x: '1' -> '<absent>'",
        "sysctl./proc/sys/vm/y: '<absent>' -> '2'",
    ]
    assert faults.differences(before, before) == []


def test_differences_leave_out_only_what_is_ignored():
    before = {"sysctl": {"/proc/sys/vm/user_reserve_kbytes": "30543", "/proc/sys/vm/swappiness": "60"}}
    after = {"sysctl": {"/proc/sys/vm/user_reserve_kbytes": "30550", "/proc/sys/vm/swappiness": "10"}}
    assert faults.differences(before, after, faults.PER_BOOT) == ["sysctl./proc/sys/vm/swappiness: '60' -> '10'"]


def test_per_boot_list_is_small_and_every_entry_says_why():
    assert len(faults.PER_BOOT) <= 3
    assert all(name.split(".", 1)[0] in ("sysctl", "irq", "memory") and len(why) > 20
               for name, why in faults.PER_BOOT.items())


@pytest.mark.parametrize(("after", "other_boot", "rc", "lines"), [
    ({"sysctl": {"/proc/sys/vm/user_reserve_kbytes": "30550", "/proc/sys/vm/swappiness": "60"}}, True, 0,
     ["left out (computed at boot", "2 entries compared, 0 differ"]),
    ({"sysctl": {"/proc/sys/vm/user_reserve_kbytes": "30550", "/proc/sys/vm/swappiness": "60"}}, False, 1,
     ["differs: sysctl./proc/sys/vm/user_reserve_kbytes: '30543' -> '30550'"]),
    ({"sysctl": {"/proc/sys/vm/user_reserve_kbytes": "30543", "/proc/sys/vm/swappiness": "10"}}, True, 1,
     ["differs: sysctl./proc/sys/vm/swappiness: '60' -> '10'", "2 entries compared, 1 differ"]),
])
def test_compare_two_snapshot_files(tmp_path, capsys, after, other_boot, rc, lines):
    before = {"sysctl": {"/proc/sys/vm/user_reserve_kbytes": "30543", "/proc/sys/vm/swappiness": "60"}}
    (tmp_path / "before.json").write_text(json.dumps(before))
    (tmp_path / "after.json").write_text(json.dumps(after))
    argv = ["compare", str(tmp_path / "before.json"), str(tmp_path / "after.json")] + ["--other-boot"] * other_boot
    assert faults.main(argv) == rc
    out = capsys.readouterr().out
    assert all(line in out for line in lines), out


def test_compare_refuses_an_empty_snapshot(tmp_path):
    (tmp_path / "empty.json").write_text("{}")
    assert faults.main(["compare", str(tmp_path / "empty.json"), str(tmp_path / "empty.json")]) == 1


def test_flatten_keeps_lists_and_empty_dicts():
    assert faults.flatten({"a": {"b": 1, "c": {}}, "d": [1, 2]}) == {"a.b": 1, "a.c": {}, "d": [1, 2]}


# -- ansible-playbook output -------------------------------------------------------------------------------------------
RECAP_OUTPUT = """
PLAY RECAP *********************************************************************
restore612                 : ok=9    changed=3    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0

PLAY RECAP *********************************************************************
restore61                  : ok=13   changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0
restore612                 : ok=13   changed=2    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
"""


def test_recap_reads_the_last_recap_of_the_host_named():
    assert faults.recap(RECAP_OUTPUT, "restore612") == {"ok": 13, "changed": 2, "unreachable": 1, "failed": 0}
    assert faults.recap(RECAP_OUTPUT, "restore61") == {"ok": 13, "changed": 0, "unreachable": 0, "failed": 1}
    assert faults.recap(RECAP_OUTPUT, "restore6") is None
    assert faults.recap("fatal: no recap", "restore61") is None


# -- finding the module process ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "expected"), [
    ([b"/usr/bin/python3", b"/root/.ansible/tmp/ansible-tmp-1-2/AnsiballZ_profile.py"], True),
    ([b"python3.11", b"-E", b"/tmp/x/AnsiballZ_profile.py"], True),
    # The shell Ansible starts it through: its one argument only contains the path.
    ([b"/bin/sh", b"-c", b"/usr/bin/python3 /root/.ansible/tmp/t/AnsiballZ_profile.py && sleep 0"], False),
    # Another module, and the agent itself.
    ([b"/usr/bin/python3", b"/root/.ansible/tmp/t/AnsiballZ_restore.py"], False),
    ([b"python3", b"-", b"agent", b"--match", b"AnsiballZ_profile.py"], False),
    # Pipelining: nothing tells the module from any other.
    ([b"/usr/bin/python3"], False),
    ([], False),
])
def test_is_module(argv, expected):
    assert faults.is_module(argv) is expected


def test_started_at_is_in_seconds_since_boot():
    assert 0 < faults.started_at(os.getpid()) <= faults.boot_seconds()


# -- the agent, against a stand-in of this test ------------------------------------------------------------------------
@pytest.fixture()
def lab_guest(tmp_path, monkeypatch):
    """This machine dressed as a lab guest for the agent: a command line with the token, a file as the sysrq trigger."""
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("root=/dev/vda aitune.lab=0123456789abcdef\n")
    sysrq = tmp_path / "sysrq-trigger"
    sysrq.write_text("")
    monkeypatch.setattr(faults, "CMDLINE", str(cmdline))
    monkeypatch.setattr(faults, "SYSRQ", str(sysrq))
    return sysrq


@pytest.fixture()
def stand_in(tmp_path):
    """Start a Python running a file named like a module, for as long as asked."""
    started = []

    def start(seconds):
        script = tmp_path / STAND_IN
        script.write_text(f"import time\ntime.sleep({seconds})\n")
        proc = subprocess.Popen([sys.executable, str(script)])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def agent_args(action, moment_ms=0):
    return argparse.Namespace(action=action, moment_ms=moment_ms, appear_timeout=30, match=STAND_IN)


def events(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_agent_refuses_outside_a_lab_guest(tmp_path, monkeypatch, capsys, stand_in):
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("root=/dev/sda1 ro quiet\n")
    monkeypatch.setattr(faults, "CMDLINE", str(cmdline))
    monkeypatch.setattr(faults, "SYSRQ", str(tmp_path / "must-not-exist"))
    proc = stand_in(5)
    assert faults.agent(agent_args("reset")) == 2
    assert [e["event"] for e in events(capsys)] == ["refused"]
    assert proc.poll() is None and not (tmp_path / "must-not-exist").exists()


def test_agent_watches_the_run(lab_guest, capsys, stand_in):
    stand_in(1.0)
    assert faults.agent(agent_args("watch")) == 0
    ready, found, ended = events(capsys)
    assert (ready["event"], found["event"], ended["event"]) == ("ready", "found", "ended")
    # Measured from the process start (/proc/PID/stat, 10 ms ticks), whatever the agent's polling added.
    assert 900 <= ended["runtime_ms"] < 5000


def test_agent_kills_at_the_moment(lab_guest, capsys, stand_in):
    proc = stand_in(30)
    assert faults.agent(agent_args("kill", 400)) == 0
    landed = events(capsys)[-1]
    assert landed["event"] == "landed" and landed["pid"] == proc.pid and landed["ended"]
    assert 400 <= landed["at_ms"] < 5000
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert lab_guest.read_text() == ""


def test_agent_misses_a_moment_after_the_end(lab_guest, capsys, stand_in):
    proc = stand_in(0.3)
    assert faults.agent(agent_args("kill", 20000)) == 0
    missed = events(capsys)[-1]
    assert missed["event"] == "missed" and missed["runtime_ms"] < 20000
    assert proc.wait(timeout=10) == 0


def test_agent_stops_the_module_before_the_reset(lab_guest, capsys, stand_in, monkeypatch):
    monkeypatch.setattr(faults, "RESET_GRACE_S", 0)
    proc = stand_in(30)
    assert faults.agent(agent_args("reset", 200)) == 0
    assert events(capsys)[-1]["event"] == "landed"
    assert lab_guest.read_text() == "b"
    with open(f"/proc/{proc.pid}/stat") as handle:
        assert handle.read().rsplit(")", 1)[1].split()[0] == "T"
    proc.kill()
    proc.wait()


def test_agent_gives_up_when_no_module_runs(lab_guest, capsys):
    args = agent_args("kill", 0)
    args.appear_timeout = 0
    assert faults.agent(args) == 3
    assert [e["event"] for e in events(capsys)] == ["ready", "timeout"]


def test_the_agent_part_runs_on_the_guests_python_from_stdin(lab_guest):
    # The controller feeds this very file to "python3 -" on the guest: it must run from stdin, without its directory.
    source = Path(faults.__file__).read_bytes()
    done = subprocess.run([sys.executable, "-", "agent", "--action", "watch", "--appear-timeout", "0"], input=source,
                          capture_output=True, cwd="/", check=False)
    # This machine has no lab token on its command line: refused before anything else.
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout)["event"] == "refused"
