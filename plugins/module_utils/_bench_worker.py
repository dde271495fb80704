# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The program the agent workload's workers run, the CPU hog of the loaded condition, and the calibration of the
workers' compute loop.

The workers are separate processes of the same interpreter (``python -c WORKER_SOURCE``), so they do not share a GIL
with each other or with the sampler, they can be started under ``systemd-run --scope`` like any command, and they
work the same when this code runs from an AnsiballZ zip. The calibration measures once per worker program (each
interpreter, and _bench_native's build) how fast the worker's loop spins and keeps that in a file, so every later
run does the same work per step. :class:`PythonWorker` is how the runner starts this program, talks to it and keys
its calibration; _bench_native's ``NativeWorker`` does the same for the program in C.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import platform
import tempfile
import time

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import CALIBRATION_PATH
from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import read_text, utc_now

# Runs as ``python -c WORKER_SOURCE``. It reads one JSON line of configuration from stdin, applies its own scheduling
# settings (only the process itself can set its timer slack, and doing the rest here too reports every refusal the
# same way), answers a "ready" line, waits for the "go" line with the window's bounds, runs, writes its samples as
# raw int64 arrays to the files it was given and answers a "done" line. It then waits for stdin to close before
# exiting, so the parent can still read its /proc counters at the end of the window.
#
# Tokens are 8-byte CLOCK_MONOTONIC timestamps in nanoseconds, written by the signaller just before the signal. On an
# eventfd the write adds the value to a counter that the wake reads back and resets; a ring has a single token in
# flight, so the counter holds exactly the sender's timestamp. Pipes carry the same 8 bytes (writes under PIPE_BUF are
# atomic) and keep a backlog in order, which the open-loop periodic workload needs.
WORKER_SOURCE = r'''
import ctypes, json, os, struct, sys, time
from array import array

STOP = 1
TOKEN = struct.Struct("=Q")
POLICIES = {"other": os.SCHED_OTHER, "batch": getattr(os, "SCHED_BATCH", None), "idle": getattr(os, "SCHED_IDLE", None),
            "fifo": os.SCHED_FIFO, "rr": os.SCHED_RR}
PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 29, 30
now = time.monotonic_ns


def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def spin(iterations):
    value = 0
    for step in range(iterations):
        value ^= step
    return value


def read_token(fd):
    data = os.read(fd, 8)
    while 0 < len(data) < 8:
        more = os.read(fd, 8 - len(data))
        if not more:
            break
        data += more
    if len(data) < 8:
        return STOP
    return TOKEN.unpack(data)[0]


def write_token(fd, value):
    os.write(fd, TOKEN.pack(value))


def apply_settings(cfg):
    applied, errors = {}, {}
    slack = cfg.get("timer_slack_ns")
    if slack is not None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            ulong = ctypes.c_ulong
            if libc.prctl(PR_SET_TIMERSLACK, ulong(slack), ulong(0), ulong(0), ulong(0)) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            applied["timer_slack_ns"] = libc.prctl(PR_GET_TIMERSLACK, ulong(0), ulong(0), ulong(0), ulong(0))
        except (OSError, AttributeError) as exc:
            errors["timer_slack_ns"] = "prctl(PR_SET_TIMERSLACK, %d): %s" % (slack, exc)
    cpus = cfg.get("cpus")
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
            applied["cpus"] = sorted(os.sched_getaffinity(0))
        except OSError as exc:
            errors["cpus"] = "sched_setaffinity(%s): %s" % (cpus, exc)
    policy = cfg.get("policy")
    if policy:
        priority = cfg.get("priority") or 0
        try:
            if POLICIES.get(policy) is None:
                raise OSError(22, "policy %s is not available here" % policy)
            os.sched_setscheduler(0, POLICIES[policy], os.sched_param(priority))
            applied["policy"] = policy
            applied["priority"] = priority
        except OSError as exc:
            errors["policy"] = "sched_setscheduler(%s, priority %d): %s" % (policy, priority, exc)
    return applied, errors


def save(path, values):
    with open(path, "wb") as handle:
        array("q", values).tofile(handle)


def calibrate():
    # Timed in steps of about 100 us, the size the workload uses (long single runs take timer ticks and, in a VM,
    # their exits). Interference only ever makes a step slower, so a low percentile of many steps is the speed of
    # the undisturbed CPU.
    def timed(iterations):
        start = now()
        spin(iterations)
        return now() - start
    iterations = 1000
    probe = min(timed(iterations) for _ in range(50))
    iterations = max(100, int(iterations * 100000.0 / max(probe, 1)))
    samples = sorted(timed(iterations) for _ in range(2000))
    fast = samples[len(samples) // 10]
    return {"iterations_per_us": iterations * 1000.0 / fast, "iterations": iterations, "p10_ns": fast}


def ring(cfg, go):
    in_fd, out_fd, iterations = cfg["in_fd"], cfg["out_fd"], cfg["iterations"]
    measure_from, stop_at = go["measure_from_ns"], go["stop_at_ns"]
    wake, step = array("q"), array("q")
    while True:
        token = read_token(in_fd)
        woke = now()
        if token == STOP:
            write_token(out_fd, STOP)
            break
        if woke >= stop_at:
            write_token(out_fd, STOP)
            break
        spin(iterations)
        sent = now()
        write_token(out_fd, sent)
        if token >= measure_from:
            wake.append(woke - token)
            step.append(sent - token)
    save(cfg["samples"] + ".wake", wake)
    save(cfg["samples"] + ".step", step)
    return {"steps": len(wake)}


def periodic_worker(cfg, go):
    in_fd, iterations = cfg["in_fd"], cfg["iterations"]
    measure_from, stop_at = go["measure_from_ns"], go["stop_at_ns"]
    wake, step = array("q"), array("q")
    drained = 0
    while True:
        token = read_token(in_fd)
        woke = now()
        if token == STOP:
            break
        if woke >= stop_at:
            # A backlog left at the end of the window is drained without the work, so an overloaded run still ends.
            drained += 1
            continue
        spin(iterations)
        done = now()
        if token >= measure_from:
            wake.append(woke - token)
            step.append(done - token)
    save(cfg["samples"] + ".wake", wake)
    save(cfg["samples"] + ".step", step)
    return {"steps": len(wake), "drained": drained}


def dispatcher(cfg, go):
    out_fds = cfg["out_fds"]
    period = int(1e9 / cfg["rate_hz"])
    measure_from, stop_at = go["measure_from_ns"], go["stop_at_ns"]
    deadline = go["start_ns"]
    lateness = array("q")
    posted = missed = index = 0
    while True:
        delay = deadline - now()
        if delay > 0:
            time.sleep(delay / 1e9)
        stamp = now()
        if stamp >= stop_at:
            break
        write_token(out_fds[index % len(out_fds)], stamp)
        index += 1
        if stamp >= measure_from:
            lateness.append(stamp - deadline)
            posted += 1
        deadline += period
        if stamp - deadline > period:
            # More than a whole period behind: skip the lost slots instead of posting a burst, and count them.
            skipped = (stamp - deadline) // period
            missed += skipped
            deadline += skipped * period
    for fd in out_fds:
        write_token(fd, STOP)
    save(cfg["samples"] + ".lateness", lateness)
    return {"posted": posted, "missed": missed}


def launch(cfg):
    # The launcher of a program that cannot place itself (an inference server, the agent sessions): the settings
    # applied above are kept across exec, by the program and by every thread and process it starts. A server gets
    # /dev/null as stdin and its stdout goes to its stderr file, so a chatty server never blocks on a pipe nobody
    # reads; the sessions keep both pipes to talk to the benchmark.
    if not cfg.get("keep_stdio"):
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(2, 1)
    argv = cfg["argv"]
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write("cannot run %s: %s\n" % (argv[0], exc.strerror or exc))
        os._exit(127)


def main():
    cfg = json.loads(sys.stdin.readline())
    role = cfg["role"]
    if role == "calibrate":
        emit(calibrate())
        return
    applied, errors = apply_settings(cfg)
    emit({"ready": True, "pid": os.getpid(), "applied": applied, "errors": errors})
    if role == "exec":
        launch(cfg)
    line = sys.stdin.readline()
    go = json.loads(line) if line.strip() else {}
    if go.get("go"):
        result = {"ring": ring, "periodic": periodic_worker, "dispatcher": dispatcher}[role](cfg, go)
        result["done"] = True
        emit(result)
        sys.stdin.readline()


main()
'''

# A CPU hog for the loaded condition. It waits for one line on stdin so it can be moved into its cgroup first.
HOG_SOURCE = 'import sys\nsys.stdin.readline()\nwhile True:\n    pass\n'


# ---------------------------------------------------------------------------------------------------------------------
# The worker program

class PythonWorker(object):
    """WORKER_SOURCE run by an interpreter: the argv that starts it, the encoding of the lines it reads, and its
    calibration entry."""

    kind = 'python'

    def __init__(self, python):
        self.python = python
        self.argv = [python, '-c', WORKER_SOURCE]

    @staticmethod
    def encode(message):
        return (json.dumps(message) + '\n').encode('utf-8')

    def calibration_key(self):
        return calibration_key(self.python)

    def calibration_fields(self):
        return {'worker': 'python', 'python': platform.python_version(), 'executable': os.path.realpath(self.python)}


def send_message(child, worker, message):
    """Writes one line to the worker's stdin in the worker's own input format; False when it has gone (like
    Child.send, which only speaks JSON)."""
    try:
        child.proc.stdin.write(worker.encode(message))
        return True
    except (BrokenPipeError, OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------------------------
# Calibration

def default_calibration_file():
    if os.geteuid() == 0:
        return CALIBRATION_PATH
    return os.path.join(os.path.expanduser('~'), '.cache', 'aitune', 'bench-calibration.json')


def worker_calibration_key(*parts):
    """The key of one worker program's entry in the calibration file: what makes its loop run at another speed."""
    return '|'.join(parts)


def calibration_key(python):
    return worker_calibration_key(os.path.realpath(python), platform.python_version(), platform.machine())


def load_calibration(path, key):
    text = read_text(path)
    if not text:
        return None
    try:
        entry = json.loads(text).get('entries', {}).get(key)
    except (ValueError, AttributeError):
        return None
    if not entry or not isinstance(entry.get('iterations_per_us'), (int, float)) or entry['iterations_per_us'] <= 0:
        return None
    return entry


def save_calibration(path, key, entry):
    """Adds the entry to the calibration file, atomically (a temporary file renamed over it)."""
    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    text = read_text(path)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get('entries'), dict):
        data = {'version': 1, 'entries': {}}
    data['entries'][key] = entry
    handle, temporary = tempfile.mkstemp(prefix='.bench-calibration.', dir=directory)
    try:
        with os.fdopen(handle, 'w') as out:
            json.dump(data, out, indent=1, sort_keys=True)
            out.write('\n')
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def calibrate(processes, worker):
    child = processes.start(worker.argv, 'calibrate')
    try:
        send_message(child, worker, {'role': 'calibrate'})
        result = child.read_message(time.monotonic() + 120, 'calibrating the compute loop')
    finally:
        processes.stop(child)
    return result


def spin_calibration(processes, worker, path, recalibrate, write, warnings):
    """The spin-loop speed of the worker program (a PythonWorker or a NativeWorker): from the file when it has one,
    else measured once (on an idle host, before any load starts) and stored, so every later run does the same amount
    of work per step."""
    key = worker.calibration_key()
    entry = None if recalibrate else load_calibration(path, key)
    if entry:
        entry = dict(entry, source='file')
    else:
        measured = calibrate(processes, worker)
        entry = dict(worker.calibration_fields(), iterations_per_us=round(measured['iterations_per_us'], 4),
                     calibrated_at=utc_now())
        if write:
            try:
                save_calibration(path, key, entry)
                entry = dict(entry, source='measured')
            except (IOError, OSError) as exc:
                warnings.append('calibration could not be stored in %s: %s' % (path, exc))
                entry = dict(entry, source='measured, not stored')
        else:
            entry = dict(entry, source='measured, not stored (check mode)')
    entry['file'] = path
    return entry
