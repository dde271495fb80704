# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The agent workload's native worker: the program of _bench_worker's ``WORKER_SOURCE`` in C, shipped here as source
(the modules reach the target as AnsiballZ zips, so a string in module_utils is how it gets there) and built on the
target when a C compiler is there.

The Python worker's interpreter puts a floor of tens of microseconds under every step; the native worker takes that
away, so what the measurement shows is the kernel's scheduling and not the interpreter. It speaks the Python worker's
protocol to the parent (JSON lines out, the same tokens, the same sample files), except that the lines it reads are
flat ``key=value`` fields (:func:`encode_message`), so the C side needs no JSON parser.

:func:`build_native_worker` compiles it into a private directory with a bounded timeout and checks the binary before
the benchmark uses it. The binary's directory lives in the benchmark's scratch directory and goes with it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from urllib.parse import quote

from ansible_collections.aitune.kernel.plugins.module_utils._bench_worker import worker_calibration_key

# Raised with the native worker's input format; the binary's --check answers it, so a stale binary is refused.
PROTOCOL = 1
COMPILERS = ('cc', 'gcc', 'clang')
CFLAGS = ('-O2', '-std=gnu11')
BUILD_TIMEOUT_S = 120
CHECK_TIMEOUT_S = 10
KEY_PATTERN = re.compile(r'^[a-z_]+$')
# Characters a value keeps as they are; everything else, space, '=' and '%' among them, is percent-encoded.
SAFE = '/._-+:,'
# What the build check sends: text that needs every kind of encoding, a list and a number.
CHECK_PROBE = {'role': 'check', 'samples': '/tmp/a b=c%d\u00e9', 'cpus': [0, 3], 'rate_hz': 1000.5}

NATIVE_SOURCE = r'''
/* The latency benchmark's agent worker: _bench_worker.WORKER_SOURCE in C, with the same protocol, except that it
 * reads flat key=value lines (values percent-encoded) instead of JSON. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_TIMERSLACK
#define PR_SET_TIMERSLACK 29
#define PR_GET_TIMERSLACK 30
#endif

#define PROTOCOL 1
#define STOP 1
#define MAX_FIELDS 32
#define MAX_LIST 1024

static const char *KNOWN[] = {"role", "timer_slack_ns", "cpus", "policy", "priority", "in_fd", "out_fd", "out_fds",
                              "iterations", "samples", "rate_hz", "go", "start_ns", "measure_from_ns", "stop_at_ns",
                              NULL};
static const struct { const char *name; int policy; } POLICIES[] = {
    {"other", SCHED_OTHER}, {"batch", SCHED_BATCH}, {"idle", SCHED_IDLE}, {"fifo", SCHED_FIFO}, {"rr", SCHED_RR},
    {NULL, 0}};

typedef struct { int count; char *keys[MAX_FIELDS]; char *values[MAX_FIELDS]; } message;
typedef struct { int64_t *data; size_t len, cap; } series;
typedef struct { char text[65536]; size_t len; } jsonobj;
typedef struct {
    const char *role, *samples;
    int in_fd, out_fd, out_count;
    int out_fds[MAX_LIST];
    uint64_t iterations;
    double rate_hz;
} job;

static jsonobj applied, errors, result;

static void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("native worker: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(2);
}

static int64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The compute step. volatile keeps every iteration: without it the compiler folds the loop into its result. */
static uint64_t spin(uint64_t iterations) {
    volatile uint64_t value = 0;
    for (uint64_t step = 0; step < iterations; step++)
        value ^= step;
    return value;
}

/* -- input: one line of key=value fields -------------------------------------------------------------------------- */

static int hex_digit(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void percent_decode(char *text) {
    char *out = text;
    while (*text) {
        if (text[0] == '%' && hex_digit(text[1]) >= 0 && hex_digit(text[2]) >= 0) {
            *out++ = (char)(hex_digit(text[1]) * 16 + hex_digit(text[2]));
            text += 3;
        } else {
            *out++ = *text++;
        }
    }
    *out = '\0';
}

static int known_key(const char *key) {
    for (int i = 0; KNOWN[i]; i++)
        if (!strcmp(KNOWN[i], key)) return 1;
    return 0;
}

/* One line into msg, whose fields point into the line (kept allocated); 0 at end of input or for an empty line. */
static int read_message(message *msg) {
    char *line = NULL, *cursor = NULL, *token;
    size_t size = 0;
    msg->count = 0;
    if (getline(&line, &size, stdin) < 0) {
        free(line);
        return 0;
    }
    for (token = strtok_r(line, " \t\r\n", &cursor); token; token = strtok_r(NULL, " \t\r\n", &cursor)) {
        char *equals = strchr(token, '=');
        if (!equals) die("a field without '=': %s", token);
        *equals = '\0';
        if (!known_key(token)) die("unknown field %s", token);
        if (msg->count == MAX_FIELDS) die("more than %d fields", MAX_FIELDS);
        percent_decode(equals + 1);
        msg->keys[msg->count] = token;
        msg->values[msg->count++] = equals + 1;
    }
    return msg->count > 0;
}

static const char *get(const message *msg, const char *key) {
    for (int i = 0; i < msg->count; i++)
        if (!strcmp(msg->keys[i], key)) return msg->values[i];
    return NULL;
}

static int64_t parse_int(const char *key, const char *text) {
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || end == text || *end) die("%s is not an integer: %s", key, text);
    return value;
}

static int64_t get_int(const message *msg, const char *key, int64_t fallback) {
    const char *text = get(msg, key);
    return text ? parse_int(key, text) : fallback;
}

static int64_t require_int(const message *msg, const char *key) {
    if (!get(msg, key)) die("%s is missing", key);
    return get_int(msg, key, 0);
}

/* A comma-separated list of integers; how many there are (0 for a missing or empty field). */
static int get_ints(const message *msg, const char *key, int64_t *out, int max) {
    const char *text = get(msg, key);
    char item[32];
    int count = 0;
    while (text && *text) {
        size_t len = strcspn(text, ",");
        if (len == 0 || len >= sizeof item || count == max) die("a bad list in %s", key);
        memcpy(item, text, len);
        item[len] = '\0';
        out[count++] = parse_int(key, item);
        text += len + (text[len] == ',');
    }
    return count;
}

/* -- output: JSON objects, one line each -------------------------------------------------------------------------- */

static void append(jsonobj *obj, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int written = vsnprintf(obj->text + obj->len, sizeof obj->text - obj->len, format, args);
    va_end(args);
    if (written < 0 || (size_t)written >= sizeof obj->text - obj->len) die("a message too long to send");
    obj->len += (size_t)written;
}

static void append_key(jsonobj *obj, const char *key) {
    append(obj, "%s\"%s\": ", obj->len ? ", " : "", key);
}

static void append_string(jsonobj *obj, const char *text) {
    append(obj, "\"");
    for (; *text; text++) {
        unsigned char c = (unsigned char)*text;
        if (c == '"' || c == '\\') append(obj, "\\%c", c);
        else if (c < 0x20) append(obj, "\\u%04x", c);
        else append(obj, "%c", c);
    }
    append(obj, "\"");
}

static void emit(const jsonobj *obj) {
    printf("{%s}\n", obj->text);
    fflush(stdout);
}

/* -- scheduling settings, applied by the worker itself ------------------------------------------------------------ */

static void apply_slack(const message *cfg) {
    char reason[256];
    if (!get(cfg, "timer_slack_ns")) return;
    int64_t slack = get_int(cfg, "timer_slack_ns", 0);
    if (prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0UL, 0UL, 0UL) != 0) {
        int code = errno;
        snprintf(reason, sizeof reason, "prctl(PR_SET_TIMERSLACK, %lld): [Errno %d] %s", (long long)slack, code,
                 strerror(code));
        append_key(&errors, "timer_slack_ns");
        append_string(&errors, reason);
        return;
    }
    append_key(&applied, "timer_slack_ns");
    append(&applied, "%d", prctl(PR_GET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL));
}

/* The CPUs the worker may run on, as a sorted list; the set grows until it covers the kernel's CPU numbers. */
static void append_affinity(void) {
    for (int ncpus = 1024; ncpus <= (1 << 20); ncpus *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpus);
        size_t size = CPU_ALLOC_SIZE(ncpus);
        if (set && sched_getaffinity(0, size, set) == 0) {
            append_key(&applied, "cpus");
            append(&applied, "[");
            for (int cpu = 0, first = 1; cpu < ncpus; cpu++)
                if (CPU_ISSET_S(cpu, size, set)) {
                    append(&applied, first ? "%d" : ", %d", cpu);
                    first = 0;
                }
            append(&applied, "]");
            CPU_FREE(set);
            return;
        }
        int code = errno;
        CPU_FREE(set);
        if (code != EINVAL) return;
    }
}

static void apply_cpus(const message *cfg) {
    static int64_t cpus[MAX_LIST];
    static char listed[8 * MAX_LIST], reason[8 * MAX_LIST + 256];
    int count = get_ints(cfg, "cpus", cpus, MAX_LIST);
    int64_t highest = 0;
    size_t used = 0;
    if (!count) return;
    for (int i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= (1 << 20)) die("no such CPU: %lld", (long long)cpus[i]);
        highest = cpus[i] > highest ? cpus[i] : highest;
        used += (size_t)snprintf(listed + used, sizeof listed - used, i ? ", %lld" : "%lld", (long long)cpus[i]);
    }
    cpu_set_t *set = CPU_ALLOC(highest + 1);
    size_t size = CPU_ALLOC_SIZE(highest + 1);
    if (!set) die("out of memory for a CPU set");
    CPU_ZERO_S(size, set);
    for (int i = 0; i < count; i++) CPU_SET_S(cpus[i], size, set);
    if (sched_setaffinity(0, size, set) != 0) {
        int code = errno;
        snprintf(reason, sizeof reason, "sched_setaffinity([%s]): [Errno %d] %s", listed, code, strerror(code));
        append_key(&errors, "cpus");
        append_string(&errors, reason);
    } else {
        append_affinity();
    }
    CPU_FREE(set);
}

static void apply_policy(const message *cfg) {
    const char *name = get(cfg, "policy");
    char reason[512];
    int policy = -1;
    if (!name || !*name) return;
    int priority = (int)get_int(cfg, "priority", 0);
    for (int i = 0; POLICIES[i].name; i++)
        if (!strcmp(POLICIES[i].name, name)) policy = POLICIES[i].policy;
    struct sched_param param = {.sched_priority = priority};
    if (policy < 0) {
        snprintf(reason, sizeof reason, "sched_setscheduler(%s, priority %d): [Errno 22] policy %s is not available "
                 "here", name, priority, name);
    } else if (sched_setscheduler(0, policy, &param) != 0) {
        int code = errno;
        snprintf(reason, sizeof reason, "sched_setscheduler(%s, priority %d): [Errno %d] %s", name, priority, code,
                 strerror(code));
    } else {
        append_key(&applied, "policy");
        append_string(&applied, name);
        append_key(&applied, "priority");
        append(&applied, "%d", priority);
        return;
    }
    append_key(&errors, "policy");
    append_string(&errors, reason);
}

/* -- tokens and samples ------------------------------------------------------------------------------------------- */

static int64_t read_token(int fd) {
    unsigned char data[8];
    size_t got = 0;
    int64_t value;
    while (got < sizeof data) {
        ssize_t n = read(fd, data + got, sizeof data - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return STOP;
        got += (size_t)n;
    }
    memcpy(&value, data, sizeof value);
    return value;
}

static void write_token(int fd, int64_t value) {
    ssize_t n;
    do n = write(fd, &value, sizeof value); while (n < 0 && errno == EINTR);
}

static void push(series *s, int64_t value) {
    if (s->len == s->cap) {
        /* Large blocks are mmap'ed, and glibc grows them with mremap: a growing series copies nothing. */
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->data = realloc(s->data, s->cap * sizeof *s->data);
        if (!s->data) die("out of memory for %zu samples", s->cap);
    }
    s->data[s->len++] = value;
}

static void save(const char *base, const char *suffix, const series *s) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s%s", base, suffix);
    FILE *out = fopen(path, "wb");
    if (!out) die("cannot write %s: %s", path, strerror(errno));
    if (s->len && fwrite(s->data, sizeof *s->data, s->len, out) != s->len) die("cannot write %s", path);
    if (fclose(out) != 0) die("cannot write %s: %s", path, strerror(errno));
}

static void sleep_until(int64_t deadline) {
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* -- the roles ---------------------------------------------------------------------------------------------------- */

static int compare(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t timed(uint64_t iterations) {
    int64_t start = now();
    spin(iterations);
    return now() - start;
}

/* Timed in steps of about 100 us, the size the workload uses; interference only makes a step slower, so a low
 * percentile of many steps is the speed of the undisturbed CPU. */
static void calibrate(void) {
    static int64_t samples[2000];
    uint64_t iterations = 1000;
    int64_t probe = INT64_MAX;
    for (int i = 0; i < 50; i++) {
        int64_t took = timed(iterations);
        probe = took < probe ? took : probe;
    }
    iterations = (uint64_t)(iterations * 100000.0 / (probe > 1 ? probe : 1));
    iterations = iterations < 100 ? 100 : iterations;
    for (int i = 0; i < 2000; i++) samples[i] = timed(iterations);
    qsort(samples, 2000, sizeof samples[0], compare);
    int64_t fast = samples[200] > 1 ? samples[200] : 1;
    append_key(&result, "iterations_per_us");
    append(&result, "%.6f", iterations * 1000.0 / fast);
    append_key(&result, "iterations");
    append(&result, "%llu", (unsigned long long)iterations);
    append_key(&result, "p10_ns");
    append(&result, "%lld", (long long)fast);
    emit(&result);
}

/* One step's wake and step latency, counted once the measurement window has started. */
static void record(series *wake, series *step, int64_t token, int64_t woke, int64_t done, int64_t measure_from) {
    if (token >= measure_from) {
        push(wake, woke - token);
        push(step, done - token);
    }
}

/* The samples written for the parent, and the step count in the "done" answer. */
static void finish_steps(const job *w, series *wake, series *step) {
    save(w->samples, ".wake", wake);
    save(w->samples, ".step", step);
    append_key(&result, "steps");
    append(&result, "%zu", wake->len);
}

static void ring(const job *w, int64_t measure_from, int64_t stop_at) {
    series wake = {0}, step = {0};
    for (;;) {
        int64_t token = read_token(w->in_fd);
        int64_t woke = now();
        if (token == STOP || woke >= stop_at) {
            write_token(w->out_fd, STOP);
            break;
        }
        spin(w->iterations);
        int64_t sent = now();
        write_token(w->out_fd, sent);
        record(&wake, &step, token, woke, sent, measure_from);
    }
    finish_steps(w, &wake, &step);
}

static void periodic(const job *w, int64_t measure_from, int64_t stop_at) {
    series wake = {0}, step = {0};
    long long drained = 0;
    for (;;) {
        int64_t token = read_token(w->in_fd);
        int64_t woke = now();
        if (token == STOP) break;
        if (woke >= stop_at) {
            /* A backlog left at the end of the window is drained without the work, so an overloaded run ends. */
            drained++;
            continue;
        }
        spin(w->iterations);
        record(&wake, &step, token, woke, now(), measure_from);
    }
    finish_steps(w, &wake, &step);
    append_key(&result, "drained");
    append(&result, "%lld", drained);
}

static void dispatcher(const job *w, int64_t start, int64_t measure_from, int64_t stop_at) {
    int64_t period = (int64_t)(1e9 / w->rate_hz), deadline = start;
    long long posted = 0, missed = 0, index = 0;
    series lateness = {0};
    for (;;) {
        if (deadline > now()) sleep_until(deadline);
        int64_t stamp = now();
        if (stamp >= stop_at) break;
        write_token(w->out_fds[index++ % w->out_count], stamp);
        if (stamp >= measure_from) {
            push(&lateness, stamp - deadline);
            posted++;
        }
        deadline += period;
        if (stamp - deadline > period) {
            /* More than a whole period behind: skip the lost slots instead of posting a burst, and count them. */
            int64_t skipped = (stamp - deadline) / period;
            missed += skipped;
            deadline += skipped * period;
        }
    }
    for (int i = 0; i < w->out_count; i++) write_token(w->out_fds[i], STOP);
    save(w->samples, ".lateness", &lateness);
    append_key(&result, "posted");
    append(&result, "%lld", posted);
    append_key(&result, "missed");
    append(&result, "%lld", missed);
}

/* -- settings, check and main ------------------------------------------------------------------------------------- */

static const char *require(const message *cfg, const char *key) {
    const char *text = get(cfg, key);
    if (!text || !*text) die("%s is missing", key);
    return text;
}

/* What the role needs, read before the worker reports ready, so a bad setting fails the start. */
static void read_job(const message *cfg, job *w) {
    static int64_t fds[MAX_LIST];
    memset(w, 0, sizeof *w);
    w->role = require(cfg, "role");
    if (!strcmp(w->role, "calibrate")) return;
    w->samples = require(cfg, "samples");
    if (!strcmp(w->role, "dispatcher")) {
        w->out_count = get_ints(cfg, "out_fds", fds, MAX_LIST);
        for (int i = 0; i < w->out_count; i++) w->out_fds[i] = (int)fds[i];
        w->rate_hz = strtod(require(cfg, "rate_hz"), NULL);
        if (!w->out_count || !(w->rate_hz >= 1 && w->rate_hz <= 1e9)) die("a dispatcher needs out_fds and rate_hz");
        return;
    }
    if (strcmp(w->role, "ring") && strcmp(w->role, "periodic")) die("unknown role %s", w->role);
    w->in_fd = (int)require_int(cfg, "in_fd");
    w->out_fd = (int)get_int(cfg, "out_fd", -1);
    w->iterations = (uint64_t)require_int(cfg, "iterations");
    if (!strcmp(w->role, "ring") && w->out_fd < 0) die("out_fd is missing");
}

/* The build's check: the protocol, the clock, and the fields of one line as this binary decodes them. */
static int check(void) {
    message probe;
    jsonobj *fields = &errors;
    int got = read_message(&probe);
    for (int i = 0; got && i < probe.count; i++) {
        append_key(fields, probe.keys[i]);
        append_string(fields, probe.values[i]);
    }
    printf("{\"ok\": true, \"protocol\": %d, \"clock_ns\": %lld, \"fields\": {%s}}\n", PROTOCOL, (long long)now(),
           fields->text);
    fflush(stdout);
    return 0;
}

static void run(const job *w, const message *go) {
    int64_t start = require_int(go, "start_ns"), measure_from = require_int(go, "measure_from_ns");
    int64_t stop_at = require_int(go, "stop_at_ns");
    if (!strcmp(w->role, "ring")) ring(w, measure_from, stop_at);
    else if (!strcmp(w->role, "periodic")) periodic(w, measure_from, stop_at);
    else dispatcher(w, start, measure_from, stop_at);
    append_key(&result, "done");
    append(&result, "true");
    emit(&result);
}

int main(int argc, char **argv) {
    message cfg, go;
    job w;
    int c;
    /* A token written to a pipe whose reader has gone fails with EPIPE instead of killing the worker. */
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && !strcmp(argv[1], "--check")) return check();
    if (!read_message(&cfg)) die("no settings on stdin");
    read_job(&cfg, &w);
    if (!strcmp(w.role, "calibrate")) {
        calibrate();
        return 0;
    }
    apply_slack(&cfg);
    apply_cpus(&cfg);
    apply_policy(&cfg);
    printf("{\"ready\": true, \"pid\": %d, \"applied\": {%s}, \"errors\": {%s}}\n", (int)getpid(), applied.text,
           errors.text);
    fflush(stdout);
    if (!read_message(&go) || get_int(&go, "go", 0) != 1) return 0;
    run(&w, &go);
    /* Stay until stdin closes, so the parent can still read this process's counters at the end of the window. */
    while ((c = getchar()) != EOF && c != '\n') {
    }
    return 0;
}
'''


class NativeUnavailable(Exception):
    """The native worker cannot be used here; the message says why, and the compiler found (if any) comes along."""

    def __init__(self, reason, compiler=None, compiler_version=None):
        super(NativeUnavailable, self).__init__(reason)
        self.compiler = compiler
        self.compiler_version = compiler_version


# ---------------------------------------------------------------------------------------------------------------------
# The input format

def flat_text(value):
    """A value as the native worker reads it back: True is 1, a list its numbers joined by commas."""
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, (list, tuple)):
        return ','.join('%d' % item for item in value)
    if isinstance(value, int):
        return '%d' % value
    if isinstance(value, float):
        return repr(value)
    return str(value)


def encode_message(message):
    """One line of ``key=value`` fields for the native worker, from the dict the Python worker gets as JSON. A None
    is left out (as the Python worker treats a missing key), and values are percent-encoded, so none holds a space,
    a newline or an '='."""
    fields = []
    for key in sorted(message):
        if message[key] is None:
            continue
        if not KEY_PATTERN.match(key):
            raise ValueError('the native worker takes no field %r' % (key,))
        fields.append('%s=%s' % (key, quote(flat_text(message[key]).encode('utf-8'), safe=SAFE)))
    return ('%s\n' % ' '.join(fields)).encode('ascii')


# ---------------------------------------------------------------------------------------------------------------------
# The worker, once built

class NativeWorker(object):
    """The built binary, as Bench and the calibration use a worker (see _bench_worker.PythonWorker)."""

    kind = 'native'

    def __init__(self, binary, compiler, compiler_version, build_s):
        self.binary = binary
        self.argv = [binary]
        self.compiler = compiler
        self.compiler_version = compiler_version
        self.build_s = build_s

    @staticmethod
    def encode(message):
        return encode_message(message)

    def calibration_key(self):
        return native_calibration_key(self.compiler, self.compiler_version)

    def calibration_fields(self):
        return {'worker': 'native', 'compiler': os.path.realpath(self.compiler),
                'compiler_version': self.compiler_version}

    def build_report(self):
        return {'compiler': self.compiler, 'compiler_version': self.compiler_version, 'fallback': None,
                'build_s': self.build_s}


def source_digest():
    """Changes with the source and the flags, so a changed program is calibrated anew."""
    text = NATIVE_SOURCE + '\0' + ' '.join(CFLAGS)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]


def native_calibration_key(compiler, version):
    """The calibration entry of the native worker, kept apart from every interpreter's."""
    return worker_calibration_key('native', os.path.realpath(compiler), version or 'unknown', platform.machine(),
                                  source_digest())


# ---------------------------------------------------------------------------------------------------------------------
# The build

def find_compiler():
    """The first of cc, gcc and clang on PATH, or None."""
    for name in COMPILERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def wait_or_kill(processes, child, timeout_s):
    """The child's exit status, or None when it ran past ``timeout_s`` (its process group is killed either way)."""
    try:
        return child.proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    finally:
        processes.stop(child, grace_s=0)


def compiler_version(processes, compiler):
    """The first line of ``<compiler> --version``, or None when it gives none (the build still goes on: the compile
    itself says whether the compiler works)."""
    try:
        child = processes.start([compiler, '--version'], 'compiler-version', stdin=False)
    except OSError:
        return None
    line = None
    try:
        line = child.channel.read_line(time.monotonic() + CHECK_TIMEOUT_S)
    except TimeoutError:
        pass
    finally:
        rc = wait_or_kill(processes, child, CHECK_TIMEOUT_S)
    if rc != 0 or not line or not line.strip():
        return None
    return line.strip()


def compile_worker(processes, compiler, directory, timeout_s):
    """Writes the source into ``directory`` and compiles it there, without a shell; the binary's path."""
    source = os.path.join(directory, 'worker.c')
    binary = os.path.join(directory, 'worker')
    try:
        with open(source, 'w') as handle:
            handle.write(NATIVE_SOURCE)
    except (IOError, OSError) as exc:
        raise NativeUnavailable('its source could not be written to %s: %s' % (directory, exc), compiler)
    name = os.path.basename(compiler)
    try:
        child = processes.start([compiler] + list(CFLAGS) + ['-o', binary, source], 'compile', stdin=False,
                                stdout=False)
    except OSError as exc:
        raise NativeUnavailable('%s (%s) could not be run: %s' % (name, compiler, exc), compiler)
    rc = wait_or_kill(processes, child, timeout_s)
    if rc is None:
        raise NativeUnavailable('%s (%s) did not compile it within %d s' % (name, compiler, timeout_s), compiler)
    if rc != 0 or not os.path.isfile(binary):
        raise NativeUnavailable('%s (%s) failed to compile it (rc=%s)%s' % (
            name, compiler, rc, child.stderr_tail(prefix=': ')), compiler)
    return binary


def check_answer(line, rc):
    """Why the check's answer is wrong, or None when the binary decoded the probe as it was meant and exited 0."""
    if line is None:
        return 'it exited (rc=%s) without an answer' % rc
    try:
        answer = json.loads(line)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get('ok') is not True:
        return 'it answered %r' % (line[:200],)
    if answer.get('protocol') != PROTOCOL:
        return 'it speaks protocol %r, not %d' % (answer.get('protocol'), PROTOCOL)
    expected = {key: flat_text(value) for key, value in CHECK_PROBE.items()}
    if answer.get('fields') != expected:
        return 'it read %r for %r' % (answer.get('fields'), expected)
    if rc != 0:
        return 'it exited with rc=%s' % rc
    return None


def check_worker(processes, binary):
    """Runs the binary once with --check: it must start (a noexec temporary directory stops it here), answer with
    this protocol, and read back the probe line exactly."""
    try:
        child = processes.start([binary, '--check'], 'native-check')
    except OSError as exc:
        raise NativeUnavailable('the built worker could not be run: %s (is the temporary directory mounted noexec?)'
                                % exc)
    line = problem = None
    try:
        child.proc.stdin.write(encode_message(CHECK_PROBE))
        line = child.channel.read_line(time.monotonic() + CHECK_TIMEOUT_S)
    except TimeoutError:
        problem = 'it did not answer within %d s' % CHECK_TIMEOUT_S
    except OSError as exc:
        problem = 'it exited at once (%s)' % exc
    finally:
        child.close_stdin()
        rc = wait_or_kill(processes, child, CHECK_TIMEOUT_S)
    problem = problem or check_answer(line, rc)
    if problem:
        raise NativeUnavailable('the built worker failed its check: %s%s' % (problem, child.stderr_tail(prefix=': ')))


def build_native_worker(processes, parent_dir):
    """Compiles and checks the native worker in a new private directory under ``parent_dir`` (which the caller
    removes, with everything in it, when the benchmark ends). Raises NativeUnavailable with the reason."""
    compiler = find_compiler()
    if compiler is None:
        raise NativeUnavailable('no C compiler (%s) on PATH' % ', '.join(COMPILERS))
    version = compiler_version(processes, compiler)
    started = time.monotonic()
    try:
        directory = tempfile.mkdtemp(prefix='aitune-native-', dir=parent_dir)
    except OSError as exc:
        raise NativeUnavailable('no directory to build it in under %s: %s' % (parent_dir, exc), compiler, version)
    try:
        binary = compile_worker(processes, compiler, directory, BUILD_TIMEOUT_S)
        check_worker(processes, binary)
    except NativeUnavailable as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise NativeUnavailable(str(exc), compiler, version)
    return NativeWorker(binary, compiler, version, round(time.monotonic() - started, 3))
