# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""Crash faults for the VM lab: kill the profile module, or hard-reset the guest, at seeded moments of an apply.

Subcommands:
  run    (controller) for every guest named, in parallel: snapshot the untuned guest, time one clean apply, then for
         each planned fault apply again and kill the module process (SIGKILL) or reset the guest (sysrq b) at its
         moment, and recover by the fault's path: "restore" restores with the collection's playbook at once and
         compares the kernel snapshot with the one from before the apply; "tune" tunes again over what the fault
         left, which must converge (a second run changes nothing and verify finds no drift), then restores and
         compares. Writes a JSON report and prints one summary line per guest; exits 1 on any difference,
         non-convergence or fault that could not be placed.
  compare (controller) two snapshot files: prints the differences (and the per-boot entries left out with
         --other-boot), exits 1 if there are any.
  agent  (guest, fed this file on stdin over ssh) wait for the module process, then watch it, or kill it, or stop it
         and reset the guest, at the moment given; prints one JSON event per line. It refuses to run on anything but
         a lab guest (kernel command line without aitune.lab=).

Moments are milliseconds after the module process started (/proc/PID/stat), stratified over the module's measured run
time: the n faults of a kind on a guest fall one each in n equal slices of it, at a seeded place within the slice. A
fault whose moment comes after the module ended, or a kill after the module had handed Ansible its result, did not
land; it is retried with the moment scaled to the shortest run seen (5 % less per miss), and only faults that landed
are counted. The faults of a kind on a guest take the two recovery paths in turn, so that with two or more of a kind
each path follows that kind on every guest, and the guests start on different paths.

Only the Python 3 standard library is used, and the agent part runs on the guest's Python (3.11).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import Any, Iterable

KINDS = ("kill", "reset")
# How a guest recovers from a fault: "restore" runs the restore playbook on what the fault left, which must give the
# pre-apply snapshot back exactly; "tune" runs the tune playbook on it, which must converge (a second run with verify
# changes nothing and finds no drift), and then restore, which must be exact. Every fault ends on a restore compared
# exactly, so the next one starts from the untuned guest.
RECOVERIES = ("restore", "tune")
MODULE = "AnsiballZ_profile.py"
# The agent acts only where the kernel command line carries the lab's token (tools/lab/lab.py boots every guest with
# aitune.lab=TOKEN): never on the machine that runs the lab.
CMDLINE = "/proc/cmdline"
LAB_TOKEN = "aitune.lab="
SYSRQ = "/proc/sysrq-trigger"
# Between stopping the module and the reset: time for the agent's last event to leave the guest.
RESET_GRACE_S = 0.3
SNAPSHOT = "/usr/local/lib/aitune-lab-snapshot.py"
# A hard reset loses what only the running kernel held; after one, the snapshot entries the kernel computes anew at
# every boot differ from those of the boot the pre-apply snapshot was taken in, whatever restore does. Only these are
# left out of the comparisons that follow a reset (kills compare everything).
PER_BOOT = {
    # min(3 % of the free pages, 128 MiB), computed once at boot from the memory free at that moment
    # (mm/util.c init_user_reserve): it varies by a few pages from boot to boot.
    "sysctl./proc/sys/vm/user_reserve_kbytes":
        "computed at boot from the free memory (3 % of the free pages): differs by some pages in every boot",
}


PROGRESS: list[Path] = []  # where log() also appends, to follow a run (tail -f) that Molecule shows only at its end
PROGRESS_LOCK = threading.Lock()


def log(msg: str) -> None:
    line = f"[faults] {msg}"
    with PROGRESS_LOCK:
        print(line, flush=True)
        for path in PROGRESS:
            with open(path, "a") as handle:
                handle.write(time.strftime("%H:%M:%S ") + line + "\n")


# -- the plan (pure) ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """One fault to inject: its kind, its slice of the module's run time (stratum of strata), its place there and how
    the guest recovers from it (RECOVERIES)."""

    kind: str
    stratum: int
    strata: int
    fraction: float  # of the module's run time, in [stratum / strata, (stratum + 1) / strata)
    recovery: str = RECOVERIES[0]


def plan(seed: int, guest: str, counts: dict[str, int], first: int = 0) -> list[Planned]:
    """The faults of one guest: for each kind, n moments stratified over the run time (one per n-th), at a place
    within each slice drawn from a generator seeded by the seed, the guest and the kind; kills first, each kind in
    a seeded order. The same seed gives the same plan whatever runs in parallel. In run order, the faults of each
    kind alternate between the recovery paths, starting with RECOVERIES[first % 2]: the caller gives each guest
    another start, so that a kind with one fault per guest still meets both paths over two guests."""
    faults: list[Planned] = []
    for kind in KINDS:
        n = int(counts.get(kind, 0))
        if n < 0:
            raise ValueError(f"{guest}: a negative number of {kind} faults")
        rng = random.Random(f"{seed}:{guest}:{kind}")
        drawn = [(k, (k + rng.random()) / n) for k in range(n)]
        rng.shuffle(drawn)
        faults += [Planned(kind, k, n, fraction, RECOVERIES[(i + first) % 2]) for i, (k, fraction) in enumerate(drawn)]
    return faults


def moment_ms(fraction: float, runtime_ms: float) -> int:
    """The moment, in whole milliseconds after the module process started, of a fraction of its run time."""
    return max(0, int(fraction * runtime_ms))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and empty dicts stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def differences(before: dict[str, Any], after: dict[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """'name: before -> after' for every snapshot entry that differs, those named in ignore left out."""
    flat_before, flat_after, ignored = flatten(before), flatten(after), set(ignore)
    return [f"{name}: {flat_before.get(name, '<absent>')!r} -> {flat_after.get(name, '<absent>')!r}"
            for name in sorted(set(flat_before) | set(flat_after))
            if name not in ignored and flat_before.get(name, "<absent>") != flat_after.get(name, "<absent>")]


RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                   r"\s+failed=(?P<failed>\d+)", re.M)


def recap(output: str, host: str) -> dict[str, int] | None:
    """The PLAY RECAP counts of one host (the last recap if there are several), or None."""
    found = None
    for match in RECAP.finditer(output):
        if match.group("host") == host:
            found = {k: int(v) for k, v in match.groupdict().items() if k != "host"}
    return found


def is_module(argv: list[bytes], name: str = MODULE) -> bool:
    """A command line (split at NUL) of a Python running the module file, as Ansible starts it without pipelining:
    /usr/bin/python3 /root/.ansible/tmp/ansible-tmp-.../AnsiballZ_profile.py. The shell around it, whose one argument
    merely contains the path, and a bare name as an argument (the agent's --match) do not match."""
    if not argv or not os.path.basename(argv[0]).startswith(b"python"):
        return False
    return any(b"/" in arg and os.path.basename(arg) == name.encode() for arg in argv[1:])


def parse_counts(value: Any, guest: str) -> dict[str, int]:
    """The lab_faults host variable: {"kill": N, "reset": M}; anything else is refused."""
    if not isinstance(value, dict) or set(value) - set(KINDS):
        raise ValueError(f"{guest}: lab_faults must be a mapping with keys among {list(KINDS)}, got {value!r}")
    counts = {}
    for kind in KINDS:
        n = value.get(kind, 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{guest}: lab_faults.{kind} must be a whole number >= 0, got {n!r}")
        counts[kind] = n
    return counts


# -- the agent (runs on the guest) -------------------------------------------------------------------------------------
def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps(dict(event=event, **fields)) + "\n")
    sys.stdout.flush()


def boot_seconds() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def started_at(pid: int) -> float:
    """When the process started, in seconds since boot (field 22 of /proc/PID/stat, in clock ticks)."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        stat = handle.read()
    return int(stat[stat.rindex(b")") + 2:].split()[19]) / os.sysconf("SC_CLK_TCK")


def orphaned() -> bool:
    """The controller went away (its ssh session closed our stdout): nobody waits for this agent any more."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # not a file (a test's capture): never orphaned
        return False
    watch = select.poll()
    watch.register(fd, select.POLLOUT)
    return any(revents & (select.POLLERR | select.POLLHUP) for _fd, revents in watch.poll(0))


def find_module(name: str) -> int | None:
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if is_module(argv, name):
            return int(entry)
    return None


def agent(args: argparse.Namespace) -> int:
    with open(CMDLINE) as handle:
        if LAB_TOKEN not in handle.read():
            emit("refused", reason=f"not a lab guest: the kernel command line has no {LAB_TOKEN}")
            return 2
    with open("/proc/sys/kernel/random/boot_id") as handle:
        emit("ready", boot_id=handle.read().strip())
    deadline = time.monotonic() + args.appear_timeout
    while True:
        pid = find_module(args.match)
        if pid is not None:
            try:
                pidfd = os.pidfd_open(pid)
                start = started_at(pid)
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    # The descriptor pins the process: if the PID is still the module now, the signals go to it.
                    if is_module(handle.read().split(b"\0"), args.match):
                        break
                os.close(pidfd)
            except (OSError, ValueError):
                pass
        if time.monotonic() > deadline:
            emit("timeout", reason=f"no {args.match} process within {args.appear_timeout}s")
            return 3
        if orphaned():
            return 4
        # The moment counts from the process start (/proc/PID/stat), so the polling only needs to be often enough
        # for the earliest moments; each scan of /proc costs an emulated guest a few milliseconds.
        time.sleep(0.02)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    emit("found", pid=pid, seen_ms=round((boot_seconds() - start) * 1000))
    if args.action == "watch":
        poller.poll()
        emit("ended", runtime_ms=round((boot_seconds() - start) * 1000))
        return 0
    wait_ms = (start + args.moment_ms / 1000 - boot_seconds()) * 1000
    if poller.poll(max(0, int(wait_ms))):
        emit("missed", runtime_ms=round((boot_seconds() - start) * 1000))
        return 0
    sig = signal.SIGKILL if args.action == "kill" else signal.SIGSTOP
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        emit("missed", runtime_ms=round((boot_seconds() - start) * 1000))
        return 0
    at_ms = round((boot_seconds() - start) * 1000)
    if args.action == "kill":
        ended = bool(poller.poll(10000))
        emit("landed", at_ms=at_ms, pid=pid, ended=ended)
        return 0
    # Stopped at the moment, the module cannot go on while the event travels back over ssh; then the reset, with no
    # sync, as a power cut would do it.
    emit("landed", at_ms=at_ms, pid=pid, ended=False)
    time.sleep(RESET_GRACE_S)
    with open(SYSRQ, "w") as handle:
        handle.write("b")
    return 0


# -- the controller ----------------------------------------------------------------------------------------------------
@dataclass
class Guest:
    name: str
    host: str
    port: int
    user: str
    key: str
    counts: dict[str, int]


@dataclass
class Step:
    """One playbook run (or snapshot) and what it showed."""

    name: str
    ok: bool
    seconds: float
    rc: int | None = None
    recap: dict[str, int] | None = None
    log: str | None = None
    detail: list[str] = field(default_factory=list)


@dataclass
class Fault:
    kind: str
    stratum: int
    strata: int
    fraction: float
    recovery: str
    moment_ms: int | None = None
    runtime_basis_ms: float | None = None
    landed: bool = False
    at_ms: int | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    restore_exact: bool | None = None
    differences: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    converged: bool | None = None
    final_exact: bool | None = None
    final_differences: list[str] = field(default_factory=list)
    boot_seconds: float | None = None
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def recovered(self) -> bool:
        """Landed, and its recovery path ended where it must: an exact restore, after a converged tune on "tune"."""
        if self.recovery == "restore":
            return bool(self.landed and self.restore_exact)
        return bool(self.landed and self.converged and self.final_exact)


class Failed(Exception):
    """A step that leaves the guest in a state the campaign cannot go on from."""


class Lab:
    """What every guest's campaign shares: how to run ansible-playbook and ssh, where to log."""

    def __init__(self, args: argparse.Namespace, control_dir: str):
        self.args = args
        self.control_dir = control_dir
        self.logs = Path(args.logs)
        self.env = dict(os.environ)
        self.env.update({
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            # ssh masters of this run only, so that those of a reset guest can be closed without touching others.
            "ANSIBLE_SSH_CONTROL_PATH_DIR": control_dir,
            "ANSIBLE_SSH_CONTROL_PATH": control_dir + "/%%h-%%p-%%r",
        })
        self.env.pop("ANSIBLE_INVENTORY", None)

    def playbook(self, guest: Guest, name: str, playbooks: list[str], log_name: str, extra: Iterable[str] = (),
                 timeout: float = 900) -> Step:
        """One playbook run on one guest, to its end (pipelining as the scenario sets it), logged to a file."""
        cmd = [self.args.ansible_playbook, "--inventory", self.args.inventory, "--limit", guest.name,
               *extra, *playbooks]
        env = dict(self.env, ANSIBLE_PIPELINING="true")
        path = self.logs / guest.name / log_name
        t0 = time.monotonic()
        with open(path, "w") as out:
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_group(proc)
                rc = None
        text = path.read_text(errors="replace")
        counts = recap(text, guest.name)
        ok = rc == 0 and counts is not None and counts["failed"] == 0 and counts["unreachable"] == 0
        step = Step(name, ok, round(time.monotonic() - t0, 1), rc, counts, str(path))
        if not ok:
            step.detail = tail_lines(text, 25)
        return step

    def start_playbook(self, guest: Guest, playbooks: list[str], log_name: str) -> tuple[subprocess.Popen, Path]:
        """The fault run: without pipelining, so that the module runs as AnsiballZ_profile.py the agent can find."""
        cmd = [self.args.ansible_playbook, "--inventory", self.args.inventory, "--limit", guest.name, *playbooks]
        path = self.logs / guest.name / log_name
        with open(path, "w") as out:
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=dict(self.env, ANSIBLE_PIPELINING="false"), start_new_session=True)
        return proc, path

    def ssh(self, guest: Guest, *remote: str, master: bool = True) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"]
        if master:
            opts += ["-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                     "-o", f"ControlPath={self.control_path(guest)}"]
        else:
            opts += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        return ["ssh", *opts, "-i", guest.key, "-p", str(guest.port), f"{guest.user}@{guest.host}", *remote]

    def control_path(self, guest: Guest) -> str:
        return f"{self.control_dir}/{guest.host}-{guest.port}-{guest.user}"

    def close_master(self, guest: Guest) -> None:
        """Close the ssh master of a guest that was reset: its connection is dead, and every new session through it
        would hang."""
        if os.path.exists(self.control_path(guest)):
            try:
                subprocess.run(["ssh", "-o", f"ControlPath={self.control_path(guest)}", "-O", "exit", "-p",
                                str(guest.port), f"{guest.user}@{guest.host}"], capture_output=True, timeout=20,
                               check=False)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.unlink(self.control_path(guest))
            except OSError:
                pass

    def remote(self, guest: Guest, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.ssh(guest, command), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)

    def snapshot(self, guest: Guest) -> tuple[dict[str, Any], str]:
        """The kernel snapshot (molecule/resources/kernel_snapshot.py, installed by the scenario's prepare) and the boot."""
        done = self.remote(guest, f"cat /proc/sys/kernel/random/boot_id && python3 {SNAPSHOT}", timeout=180)
        if done.returncode != 0:
            raise Failed(f"snapshot failed (rc {done.returncode}): {done.stderr.strip()[-2000:]}")
        boot_id, text = done.stdout.split("\n", 1)
        return json.loads(text), boot_id.strip()


def stop_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue


def tail_lines(text: str, n: int) -> list[str]:
    return [line.rstrip() for line in text.splitlines()[-n:]]


class Agent:
    """The agent on a guest, fed this very file over ssh; its events come back one JSON object per line."""

    def __init__(self, lab: Lab, guest: Guest, action: str, moment: int = 0, appear_timeout: int = 240):
        self.events: Queue = Queue()
        source = Path(__file__).read_bytes()
        cmd = lab.ssh(guest, "python3", "-", "agent", "--action", action, "--moment-ms", str(moment),
                      "--appear-timeout", str(appear_timeout))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        assert self.proc.stdin is not None
        self.proc.stdin.write(source)
        self.proc.stdin.close()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "noise", "line": line.decode(errors="replace").strip()})
        self.events.put({"event": "closed"})

    def next(self, timeout: float) -> dict[str, Any]:
        try:
            return self.events.get(timeout=timeout)
        except Empty:
            return {"event": "silent", "after_s": timeout}

    def wait_for(self, wanted: Iterable[str], timeout: float, run: subprocess.Popen | None = None) -> dict[str, Any]:
        """The next event among those wanted, or the end of the agent, or silence for the timeout; with run, also
        the end of that playbook run without such an event (after a grace for the event to come over ssh)."""
        deadline = time.monotonic() + timeout
        wanted = set(wanted) | {"refused", "timeout", "closed", "silent"}
        ended_at = None
        while True:
            if run is not None and ended_at is None and run.poll() is not None:
                ended_at = time.monotonic()
            if ended_at is not None and time.monotonic() - ended_at > 15:
                return {"event": "run ended", "rc": run.returncode if run is not None else None}
            event = self.next(max(0.1, min(1.0, deadline - time.monotonic())))
            if event["event"] == "silent":
                if time.monotonic() < deadline:
                    continue
                event["after_s"] = timeout
            if event["event"] in wanted:
                if event["event"] == "closed":
                    assert self.proc.stderr is not None
                    self.proc.wait(timeout=10)
                    event["stderr"] = self.proc.stderr.read().decode(errors="replace")[-2000:]
                return event

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_group(self.proc)


class Campaign:
    """The faults of one guest, one after the other."""

    def __init__(self, lab: Lab, guest: Guest, seed: int, first: int = 0):
        self.lab, self.guest, self.seed = lab, guest, seed
        self.faults = [Fault(p.kind, p.stratum, p.strata, round(p.fraction, 4), p.recovery)
                       for p in plan(seed, guest.name, guest.counts, first)]
        self.before: dict[str, Any] = {}
        self.boot_id = ""  # the boot of the pre-apply snapshot
        self.current_boot = ""
        self.runtime_ms: float | None = None
        self.runtimes: list[float] = []
        self.calibration: dict[str, Any] = {}
        self.error: str | None = None
        self.seconds = 0.0
        self.counter = 0
        (lab.logs / guest.name).mkdir(parents=True, exist_ok=True)

    def say(self, msg: str) -> None:
        log(f"{self.guest.name}: {msg}")

    def log_name(self, what: str) -> str:
        self.counter += 1
        return f"{self.counter:03d}-{what}.log"

    # -- steps
    def prepare(self) -> None:
        """The guest as the scenario's restore left it, with irqbalance kept off across resets and the IRQs back on
        the default mask, as a boot without irqbalance leaves them: prepare.yml stopped irqbalance, but only after it
        had spread some IRQs by its own measurements, which a reset would forget. Then the pre-apply snapshot."""
        if LAB_TOKEN not in self.lab.remote(self.guest, "cat /proc/cmdline").stdout:
            raise Failed(f"not a lab guest: its kernel command line has no {LAB_TOKEN}")
        done = self.lab.remote(self.guest, (
            "systemctl disable --now --quiet irqbalance.service 2>/dev/null; "
            "mask=$(cat /proc/irq/default_smp_affinity); "
            "for irq in /proc/irq/[0-9]*; do "
            "  [ \"$(cat $irq/smp_affinity)\" = \"$mask\" ] || echo $mask > $irq/smp_affinity 2>/dev/null || true; "
            "done"))
        if done.returncode != 0:
            raise Failed(f"preparing the guest failed: {done.stderr.strip()}")
        self.before, self.boot_id = self.lab.snapshot(self.guest)
        self.current_boot = self.boot_id

    def compare(self, fault: Fault | None, label: str) -> tuple[bool, list[str]]:
        """The snapshot now against the pre-apply one; in another boot, without the entries each boot sets anew."""
        t0 = time.monotonic()
        now, boot_id = self.lab.snapshot(self.guest)
        ignore = PER_BOOT if boot_id != self.boot_id else {}
        diff = differences(self.before, now, ignore)
        step = Step(f"snapshot after {label}", not diff, round(time.monotonic() - t0, 1), detail=diff[:50])
        if fault is not None:
            fault.steps.append(step)
            for entry in differences(self.before, now):
                if entry.split(":", 1)[0] in ignore and entry not in fault.ignored:
                    fault.ignored.append(entry)
        return not diff, diff

    def restore(self, fault: Fault | None, label: str) -> tuple[bool, list[str]]:
        step = self.lab.playbook(self.guest, f"restore after {label}", [self.lab.args.restore_playbook],
                                 self.log_name(f"restore-after-{label}"))
        if fault is not None:
            fault.steps.append(step)
        if not step.ok:
            raise Failed(f"restore after {label} failed: see {step.log}\n" + "\n".join(step.detail))
        return self.compare(fault, label)

    def calibrate(self) -> None:
        """One clean apply, watched: the module's run time the moments are fractions of. Then restore, which must
        give the pre-apply snapshot back exactly, as the scenario showed already."""
        agent = Agent(self.lab, self.guest, "watch")
        try:
            ready = agent.wait_for(["ready"], 120)
            if ready["event"] != "ready":
                raise Failed(f"the agent did not start: {ready}")
            proc, path = self.lab.start_playbook(self.guest, [self.lab.args.tune_playbook], self.log_name("calibrate"))
            ended = agent.wait_for(["ended"], 900, run=proc)
            rc = proc.wait(timeout=600)
        finally:
            agent.stop()
        text = path.read_text(errors="replace")
        if ended["event"] != "ended" or rc != 0:
            raise Failed(f"the clean apply failed (rc {rc}, agent {ended}): see {path}\n" + "\n".join(tail_lines(text, 25)))
        self.runtime_ms = float(ended["runtime_ms"])
        self.runtimes.append(self.runtime_ms)
        exact, diff = self.restore(None, "clean-apply")
        self.calibration = {"runtime_ms": self.runtime_ms, "restore_exact": exact, "differences": diff}
        if not exact:
            raise Failed("restore after a clean apply differs from the pre-apply snapshot:\n" + "\n".join(diff))
        self.say(f"clean apply: module ran {self.runtime_ms / 1000:.1f}s; restore exact")

    def inject(self, fault: Fault) -> bool:
        """One try at the fault's moment; True if it landed. A miss is restored (and compared) at once."""
        assert self.runtime_ms is not None
        # The shortest run seen so far, and 5 % less for each miss of this fault: a moment near the end of the run
        # may fall after the module's result again.
        basis = min(self.runtimes) * 0.95 ** len(fault.attempts)
        moment = moment_ms(fault.fraction, basis)
        attempt: dict[str, Any] = {"moment_ms": moment, "runtime_basis_ms": round(basis)}
        fault.attempts.append(attempt)
        agent = Agent(self.lab, self.guest, fault.kind, moment)
        proc = None
        try:
            ready = agent.wait_for(["ready"], 120)
            if ready["event"] != "ready":
                raise Failed(f"the agent did not start: {ready}")
            proc, path = self.lab.start_playbook(self.guest, [self.lab.args.tune_playbook],
                                                 self.log_name(f"{fault.kind}-at-{moment}ms"))
            t_run = time.monotonic()
            found = agent.wait_for(["found"], 600, run=proc)
            if found["event"] != "found":
                raise Failed(f"the module never ran: {found}; see {path}\n"
                             + "\n".join(tail_lines(path.read_text(errors="replace"), 25)))
            outcome = agent.wait_for(["landed", "missed"], moment / 1000 + 600, run=proc)
            attempt["agent"] = outcome
            if outcome["event"] == "missed":
                rc = proc.wait(timeout=600)
                attempt["run_rc"] = rc
                return self.missed(fault, attempt, float(outcome["runtime_ms"]), "the module had ended")
            if outcome["event"] != "landed":
                raise Failed(f"the agent gave up: {outcome}")
            if fault.kind == "kill":
                rc = proc.wait(timeout=600)
                text = path.read_text(errors="replace")
                attempt["run_rc"], attempt["run_recap"] = rc, recap(text, self.guest.name)
                if rc == 0:
                    # The module had written its result and was on its way out (its wrapper removing its files, the
                    # interpreter ending): Ansible took the result, so the apply was complete when the kill came.
                    return self.missed(fault, attempt, float(outcome["at_ms"]), "the module had returned its result")
                fault.steps.append(Step("apply, killed", True, round(time.monotonic() - t_run, 1), rc,
                                        attempt["run_recap"], str(path)))
            else:
                time.sleep(1)
                stop_group(proc)
                agent.stop()
                self.lab.close_master(self.guest)
                fault.steps.append(Step("apply, reset", True, round(time.monotonic() - t_run, 1), None, None, str(path)))
                fault.boot_seconds = self.wait_boot()
                fault.steps.append(Step("boot", True, fault.boot_seconds))
            fault.moment_ms, fault.runtime_basis_ms, fault.at_ms, fault.landed = moment, round(basis), outcome["at_ms"], True
            return True
        finally:
            agent.stop()
            if proc is not None and proc.poll() is None:
                stop_group(proc)

    def missed(self, fault: Fault, attempt: dict[str, Any], runtime_ms: float, why: str) -> bool:
        """A fault that came too late: the apply was complete. Restore (which must be exact, as after any apply) and
        let the next try scale its moment to this run time."""
        attempt["missed"] = why
        self.runtimes.append(runtime_ms)
        self.say(f"{fault.kind} at {attempt['moment_ms']} ms missed: {why} ({runtime_ms:.0f} ms); trying again")
        exact, diff = self.restore(fault, f"missed-{fault.kind}")
        attempt["restore_exact"], attempt["differences"] = exact, diff
        if not exact:
            fault.error = "restore after a completed apply (a missed fault) differs from the pre-apply snapshot"
            fault.differences = diff
            raise Failed(f"{fault.error}:\n" + "\n".join(diff))
        return False

    def wait_boot(self, timeout: float = 600) -> float:
        """Until the guest answers ssh in a new boot."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if banner(self.guest.host, self.guest.port):
                try:
                    done = subprocess.run(self.lab.ssh(self.guest, "cat /proc/sys/kernel/random/boot_id", master=False),
                                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                                          check=False)
                except subprocess.TimeoutExpired:
                    continue
                if done.returncode == 0 and done.stdout.strip() and done.stdout.strip() != self.current_boot:
                    self.current_boot = done.stdout.strip()
                    return round(time.monotonic() - t0, 1)
            time.sleep(1)
        raise Failed(f"no ssh in a new boot {timeout}s after the reset")

    def recover(self, fault: Fault) -> None:
        label = f"{fault.kind}-{fault.at_ms}ms"
        if fault.recovery == "restore":
            fault.restore_exact, fault.differences = self.restore(fault, label)
            self.back_at_start(fault, fault.restore_exact, fault.differences, "restore after the fault")
            return
        # Tune over what the fault left, as an operator would run the apply again.
        tune = self.lab.playbook(self.guest, "tune again", [self.lab.args.tune_playbook], self.log_name("tune"))
        fault.steps.append(tune)
        again = None
        if tune.ok:
            playbooks = [self.lab.args.tune_playbook, self.lab.args.verify_playbook]
            again = self.lab.playbook(self.guest, "second run and verify", playbooks,
                                      self.log_name("tune-again-verify"), extra=["-e", "aitune_fail_on_drift=true"])
            fault.steps.append(again)
        fault.converged = bool(tune.ok and again is not None and again.ok and again.recap is not None
                               and again.recap["changed"] == 0)
        if not fault.converged:
            fault.error = "the tune after the fault did not converge"
            raise Failed(f"{fault.error}: see {(again or tune).log}")
        fault.final_exact, fault.final_differences = self.restore(fault, f"{label}-tuned")
        self.back_at_start(fault, fault.final_exact, fault.final_differences, "restore after the tune")

    @staticmethod
    def back_at_start(fault: Fault, exact: bool, diff: list[str], what: str) -> None:
        """Every recovery ends on the untuned guest; where it does not, the faults after this one would say nothing."""
        if not exact:
            fault.error = f"{what} differs from the pre-apply snapshot"
            raise Failed(f"{fault.error}:\n" + "\n".join(diff))

    def run(self) -> None:
        t_start = time.monotonic()
        try:
            self.prepare()
            self.calibrate()
            for index, fault in enumerate(self.faults, 1):
                t0 = time.monotonic()
                name = f"{fault.kind} {index}/{len(self.faults)} (slice {fault.stratum + 1}/{fault.strata})"
                try:
                    for _attempt in range(3):
                        if self.inject(fault):
                            break
                    if not fault.landed:
                        fault.error = "the fault missed the module three times"
                        raise Failed(fault.error)
                    self.recover(fault)
                finally:
                    fault.seconds = round(time.monotonic() - t0, 1)
                outcome = ("restore exact" if fault.recovery == "restore"
                           else "tune converged; restore exact")
                self.say(f"{name} at {fault.at_ms} ms of {fault.runtime_basis_ms:.0f}: landed; {outcome} "
                         f"({fault.seconds:.0f}s)")
                for diff in fault.differences + fault.final_differences:
                    self.say(f"  difference: {diff}")
        except Failed as exc:
            self.error = str(exc)
            self.say(f"FAILED: {exc}")
        except Exception as exc:  # noqa: BLE001 - the report must say what stopped the campaign
            self.error = f"{type(exc).__name__}: {exc}"
            self.say(f"FAILED: {self.error}")
        finally:
            self.seconds = round(time.monotonic() - t_start, 1)

    # -- outcome
    def summary(self) -> dict[str, Any]:
        landed = [f for f in self.faults if f.landed]
        return {
            "planned": {kind: self.guest.counts.get(kind, 0) for kind in KINDS},
            "injected": {kind: sum(1 for f in landed if f.kind == kind) for kind in KINDS},
            "by_recovery": {path: sum(1 for f in landed if f.recovery == path) for path in RECOVERIES},
            "misses": sum(1 for f in self.faults for a in f.attempts if "missed" in a),
            "recovered": sum(1 for f in landed if f.recovered),
            "converged": sum(1 for f in landed if f.converged),
            "differences": sum(len(f.differences) + len(f.final_differences) for f in self.faults),
        }

    def passed(self) -> bool:
        return self.error is None and all(f.recovered for f in self.faults)

    def line(self) -> str:
        s = self.summary()
        injected = sum(s["injected"].values())
        kinds = ", ".join(f"{s['injected'][k]} {k}" for k in KINDS)
        paths = ", ".join(f"{s['by_recovery'][p]} by {p}" for p in RECOVERIES)
        return (f"{self.guest.name}: {'passed' if self.passed() else 'FAILED'}: {injected} faults injected ({kinds}; "
                f"{s['misses']} missed and retried), {s['recovered']} recovered ({paths}; {s['converged']} tunes "
                f"converged), {s['differences']} differences, {self.seconds:.0f}s"
                + (f"; stopped: {self.error.splitlines()[0]}" if self.error else ""))

    def report(self) -> dict[str, Any]:
        return {"guest": asdict(self.guest), "passed": self.passed(), "error": self.error, "seconds": self.seconds,
                "calibration": self.calibration, "summary": self.summary(),
                "faults": [dict(asdict(f), recovered=f.recovered) for f in self.faults]}


def banner(host: str, port: int) -> bool:
    """The guest's sshd answers (slirp accepts the TCP connection itself while the guest is down)."""
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            conn.settimeout(3)
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def load_guests(args: argparse.Namespace) -> list[Guest]:
    """The named guests with their connection settings and lab_faults, from the inventory (ansible-inventory)."""
    inventory_bin = str(Path(args.ansible_playbook).with_name("ansible-inventory"))
    listed = subprocess.run([inventory_bin, "--inventory", args.inventory, "--list"], capture_output=True, text=True,
                            check=True).stdout
    hostvars = json.loads(listed).get("_meta", {}).get("hostvars", {})
    guests = []
    for name in args.hosts:
        if name not in hostvars:
            raise SystemExit(f"faults: {name} is not in {args.inventory}")
        hv = hostvars[name]
        host, port = hv.get("ansible_host"), hv.get("ansible_port")
        # Only lab guests: reached through a forwarded port of this machine, never over a local connection.
        if hv.get("ansible_connection", "ssh") != "ssh" or host != "127.0.0.1" or not port:
            raise SystemExit(f"faults: {name} is not a lab guest (ssh to a forwarded port of 127.0.0.1)")
        guests.append(Guest(name, host, int(port), hv.get("ansible_user", "root"),
                            hv.get("ansible_private_key_file", ""), parse_counts(hv.get("lab_faults", {}), name)))
    return guests


def cmd_run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else secrets.randbelow(2 ** 32)
    guests = load_guests(args)
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    PROGRESS.append(Path(args.logs) / "progress.log")
    PROGRESS[-1].write_text("")
    log(f"seed {seed} (rerun with AITUNE_LAB_FAULT_SEED={seed}); logs in {args.logs}")
    for first, guest in enumerate(guests):
        planned = plan(seed, guest.name, guest.counts, first)
        log(f"{guest.name}: " + ", ".join(f"{p.kind} at {p.fraction:.3f} of the run, then {p.recovery}"
                                          for p in planned))
    Path(args.control_dir).mkdir(parents=True, exist_ok=True)
    control_dir = tempfile.mkdtemp(prefix="faults-", dir=args.control_dir)
    lab = Lab(args, control_dir)
    campaigns = [Campaign(lab, guest, seed, first) for first, guest in enumerate(guests)]
    threads = [threading.Thread(target=c.run, name=c.guest.name) for c in campaigns]
    t0 = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for guest in guests:
            lab.close_master(guest)
        shutil.rmtree(control_dir, ignore_errors=True)
    report = {"seed": seed, "seconds": round(time.monotonic() - t0, 1), "per_boot_ignored": PER_BOOT,
              "tune_playbook": args.tune_playbook, "restore_playbook": args.restore_playbook,
              "guests": [c.report() for c in campaigns]}
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=1) + "\n")
    log(f"report: {args.report}")
    for campaign in campaigns:
        log(campaign.line())
    return 0 if all(c.passed() for c in campaigns) else 1


def cmd_compare(args: argparse.Namespace) -> int:
    """Two snapshot files of one guest; with --other-boot (a reboot came between them) without PER_BOOT."""
    with open(args.before) as handle:
        before = json.load(handle)
    with open(args.after) as handle:
        after = json.load(handle)
    ignore = PER_BOOT if args.other_boot else {}
    diff = differences(before, after, ignore)
    for entry in differences(before, after):
        if entry.split(":", 1)[0] in ignore:
            print(f"left out ({ignore[entry.split(':', 1)[0]]}): {entry}")
    for entry in diff:
        print(f"differs: {entry}")
    print(f"{len(flatten(before))} entries compared, {len(diff)} differ")
    return 1 if diff or not before else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="faults.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="inject the faults into the guests named, in parallel")
    r.add_argument("--inventory", required=True, help="the Molecule inventory directory")
    r.add_argument("--ansible-playbook", required=True, help="path of ansible-playbook (ansible-inventory beside it)")
    r.add_argument("--tune-playbook", required=True)
    r.add_argument("--restore-playbook", required=True)
    r.add_argument("--verify-playbook", required=True)
    r.add_argument("--seed", type=lambda v: int(v) if v.strip() else None, default=None)
    r.add_argument("--logs", required=True, help="directory of the per-guest playbook logs")
    r.add_argument("--report", required=True, help="path of the JSON report")
    r.add_argument("--control-dir", required=True,
                   help="where this run's ssh control sockets go (in a directory of their own, removed at the end)")
    r.add_argument("--hosts", required=True, type=lambda v: [h for h in v.split(",") if h],
                   help="the guests, comma-separated")
    c = sub.add_parser("compare", help="compare two snapshot files of a guest (kernel_snapshot.py)")
    c.add_argument("before")
    c.add_argument("after")
    c.add_argument("--other-boot", action="store_true",
                   help="a reboot came between them: leave out the entries each boot computes anew")
    a = sub.add_parser("agent", help="(on the guest) watch, kill or reset at a moment of the module's run")
    a.add_argument("--action", choices=("watch", *KINDS), required=True)
    a.add_argument("--moment-ms", type=int, default=0)
    a.add_argument("--appear-timeout", type=int, default=240)
    a.add_argument("--match", default=MODULE)
    args = ap.parse_args(argv)
    if args.cmd == "agent":
        return agent(args)
    if args.cmd == "compare":
        return cmd_compare(args)
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
