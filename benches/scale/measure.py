#!/usr/bin/env python3
"""The measures of benches/scale.sh: corral beside a C floor (floor.c, `seq`, `cat`) and PM2,
in one run, on this machine. Python 3.11, standard library only. Run it through
benches/scale.sh, which builds floor and stamp, installs PM2 into a scratch folder and sets
the environment below; it prints a Markdown table on stdout (also written to SCALE_RESULTS)
and its progress on stderr.

Environment (set by scale.sh): SCALE_BIN (the folder with floor and stamp), SCALE_CORRAL
(the corral binary), SCALE_PM2 (the pm2 CLI, empty: no PM2), SCALE_PM2_HOME (a private
PM2_HOME), SCALE_WORK (this run's scratch folder), SCALE_RESULTS (where the table goes),
SCALE_COMMAND (the command line, for the results). Knobs: SCALE_ROWS, SCALE_KILLS,
SCALE_QUICK (see scale.sh).

Every process it starts is tracked and stopped at the end (also on SIGTERM/SIGINT): the
supervisors get SIGTERM, then SIGKILL; every stamp worker that announced itself and is
still alive afterwards gets SIGKILL (checked against the stamp binary, so a reused pid is
never hit); PM2's daemon is stopped with `pm2 kill`. Every wait has a deadline.
"""

import datetime
import fcntl
import json
import math
import os
import platform
import pty
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

BIN = os.environ.get("SCALE_BIN", "")
STAMP = os.path.join(BIN, "stamp")
FLOOR = os.path.join(BIN, "floor")
CORRAL = os.environ.get("SCALE_CORRAL", "")
PM2 = os.environ.get("SCALE_PM2", "")
PM2_HOME = os.environ.get("SCALE_PM2_HOME", "")
WORK = os.environ.get("SCALE_WORK") or tempfile.mkdtemp(prefix="corral-scale.")
RESULTS = os.environ.get("SCALE_RESULTS", "")
COMMAND = os.environ.get("SCALE_COMMAND", "benches/scale.sh")
QUICK = os.environ.get("SCALE_QUICK", "") not in ("", "0")
KILLS = int(os.environ.get("SCALE_KILLS") or (20 if QUICK else 200))
ROW_NAMES = ["start", "big", "dashboard", "restart", "lines", "yes"]
ROWS = os.environ.get("SCALE_ROWS") or " ".join(ROW_NAMES)

N_START = 100 if QUICK else 1000  # measure 1
N_BIG = 100 if QUICK else 4096  # measure 2
N_DASH = 100 if QUICK else 1000  # measure 3 (and 64 for reference)
N_DASH_SMALL = 64
LINES = 200_000 if QUICK else 2_000_000  # measure 5
DASH_SETTLE = 1.0 if QUICK else 5.0
DASH_WINDOW = 3.0 if QUICK else 20.0
YES_WINDOW = 3.0 if QUICK else 10.0
KILL_GAP = 0.030  # after each replacement arrived
RUNS_START, RUNS_BIG, RUNS_LINES = 3, 2, 3
RESTART_WORKERS = 4

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Every process started directly gets SIGTERM if this script dies without its cleanup.
GUARD = ["setpriv", "--pdeathsig", "TERM", "--"] if subprocess.run(
    ["setpriv", "--pdeathsig", "TERM", "--", "true"], capture_output=True).returncode == 0 else []


def say(msg):
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def mono():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Failed(Exception):
    """A measure that could not be taken; its message goes into the table cell."""


# ---------------------------------------------------------------------------------------
# Processes: everything started is tracked and stopped at the end.

STARTED = []  # Popen objects
STAMP_PIDS = set()  # every stamp worker that announced itself
PM2_USED = False


def launch(argv, **kw):
    p = subprocess.Popen(GUARD + argv, **kw)
    STARTED.append(p)
    return p


def stop(p, grace=10.0, sig=signal.SIGTERM):
    """Signal P, wait up to GRACE s, then SIGKILL; returns its exit code (None if it
    survived even that)."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            say(f"pid {p.pid} still running {grace:.0f} s after signal {sig}: SIGKILL")
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                say(f"pid {p.pid} survived SIGKILL")
    if p in STARTED and p.poll() is not None:
        STARTED.remove(p)
    return p.returncode


def is_stamp(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe") == os.path.realpath(STAMP)
    except OSError:
        return False


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def reap_stamps(deadline_s=10.0):
    """Waits for every stamp worker seen to be gone (its supervisor stops it); SIGKILLs the
    ones still there at the deadline. Returns how many had to be killed."""
    end = time.monotonic() + deadline_s
    left = {p for p in STAMP_PIDS if alive(p) and is_stamp(p)}
    while left and time.monotonic() < end:
        time.sleep(0.05)
        left = {p for p in left if alive(p) and is_stamp(p)}
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    STAMP_PIDS.clear()
    return len(left)


def pm2(*args, timeout=60, check=True, env_extra=None):
    global PM2_USED
    PM2_USED = True
    env = dict(os.environ, PM2_HOME=PM2_HOME, **(env_extra or {}))
    try:
        r = subprocess.run(GUARD + [PM2, *args], env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failed(f"`pm2 {args[0]}` did not finish in {timeout} s")
    if check and r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["?"]
        raise Failed(f"`pm2 {' '.join(args[:1])}` failed: {tail[0][:120]}")
    return r.stdout


def pm2_daemon_pid():
    try:
        with open(os.path.join(PM2_HOME, "pm2.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def pm2_kill():
    if PM2_USED and alive(pm2_daemon_pid() or -1):
        say("stopping PM2 (pm2 kill)")
        try:
            pm2("kill", timeout=30, check=False)
        except Failed as e:
            say(str(e))


def cleanup():
    for p in list(STARTED):
        stop(p, 10)
    pm2_kill()
    n = reap_stamps(5)
    if n:
        say(f"{n} stamp workers outlived their supervisor: SIGKILLed")


def on_signal(sig, _frame):
    # Once: a second SIGTERM (timeout(1) signals its child and then its process group)
    # must not cut the cleanup short.
    # (Not SIG_IGN: that would be inherited by what the cleanup runs, like `pm2 kill`.)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, lambda *_: None)
    say(f"signal {sig}: stopping")
    raise SystemExit(128 + sig)


# ---------------------------------------------------------------------------------------
# /proc

def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # the command name may hold spaces


def cpu_ticks(pid):
    f = stat_fields(pid)
    return int(f[11]) + int(f[12])  # utime + stime, all threads


def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def io_field(pid, name):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            if k == name:
                return int(v)
    raise Failed(f"no {name} in /proc/{pid}/io")


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------
# The stamps: each worker sends "PID MONO_NS REAL_NS" once exec'd.

class Stamps:
    def __init__(self):
        self.dir = tempfile.mkdtemp(dir=WORK, prefix="run.")
        self.path = os.path.join(self.dir, "stamp.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(self.path)
        self.env = dict(os.environ, STAMP_SOCK=self.path, XDG_RUNTIME_DIR=self.dir)

    def recv(self, timeout):
        """The next stamp (pid, mono_ns, real_ns), or None after TIMEOUT s."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            msg = self.sock.recv(128)
        except socket.timeout:
            return None
        pid, m, r = (int(x) for x in msg.split())
        STAMP_PIDS.add(pid)
        return pid, m, r

    def collect(self, n, deadline_s, sup):
        """Stamps from N distinct pids: {pid: (mono, real)}; fails at the deadline or when
        the supervisor SUP exits first."""
        got = {}
        end = time.monotonic() + deadline_s
        while len(got) < n:
            left = end - time.monotonic()
            if left <= 0:
                raise Failed(f"{len(got)} of {n} workers exec'd in {deadline_s:.0f} s")
            s = self.recv(min(left, 0.5))
            if s is None:
                if sup.poll() is not None:
                    raise Failed(f"supervisor exited ({sup.returncode}) after {len(got)} of {n} workers")
                continue
            got[s[0]] = (s[1], s[2])
        return got

    def close(self):
        self.sock.close()


def errfile(name):
    return open(os.path.join(WORK, name + ".err"), "ab")


def median_min(xs):
    return statistics.median(xs), min(xs)


def pct(xs, q):
    s = sorted(xs)
    return s[max(0, math.ceil(q * len(s)) - 1)]


# ---------------------------------------------------------------------------------------
# 1 and 2: start -> N workers exec'd.

def spawn_argv(kind, n, fmt="text"):
    if kind == "corral":
        return [CORRAL, "--no-ui", "--log-format", fmt, "-w", str(n), "--", STAMP]
    return [FLOOR, str(n), STAMP]


def spawn_run(kind, n, deadline_s):
    st = Stamps()
    try:
        t0 = mono()
        p = launch(spawn_argv(kind, n), env=st.env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=errfile(f"spawn-{kind}-{n}"))
        got = st.collect(n, deadline_s, p)
        ms = (max(m for m, _ in got.values()) - t0) / 1e6
        rc = stop(p, 60)
        if rc not in (0, None) and kind == "corral":
            say(f"corral exited {rc} after SIGTERM")
        reap_stamps()
        return ms
    finally:
        st.close()


def spawn_json_run(n, deadline_s):
    """corral --log-format json: the start->all time, the spawned events' ts against the
    stamps' wall clock, and when the first spawned line was read."""
    st = Stamps()
    lines, first, spawned = [], [None], [0]
    try:
        t0 = mono()
        p = launch(spawn_argv("corral", n, "json"), env=st.env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=errfile(f"spawn-json-{n}"))

        def read():
            for line in p.stdout:
                if b'"event":"spawned"' in line:
                    if first[0] is None:
                        first[0] = mono()
                    spawned[0] += 1
                lines.append(line)

        th = threading.Thread(target=read, daemon=True)
        th.start()
        got = st.collect(n, deadline_s, p)
        all_ms = (max(m for m, _ in got.values()) - t0) / 1e6
        end = time.monotonic() + 30
        while spawned[0] < n and time.monotonic() < end:
            time.sleep(0.05)
        stop(p, 60)
        th.join(10)
        reap_stamps()
        diffs = []
        for raw in lines:
            if b'"event":"spawned"' not in raw:
                continue
            e = json.loads(raw)
            if e.get("event") != "spawned" or e.get("pid") not in got:
                continue
            ts = datetime.datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
            diffs.append(ts * 1e3 - got[e["pid"]][1] / 1e6)
        if not diffs:
            raise Failed("no spawned events matched the stamps")
        if first[0] is None:
            raise Failed("no spawned line read")
        return {
            "all_ms": all_ms,
            "first_ms": (first[0] - t0) / 1e6,
            "n_events": len(diffs),
            "median_abs": statistics.median(abs(d) for d in diffs),
            "max_abs": max(abs(d) for d in diffs),
            "min": min(diffs),
            "max": max(diffs),
        }
    finally:
        st.close()


def measure_spawn(n, runs, table, details, label):
    res = {}
    for kind in ("corral", "floor"):
        xs = []
        try:
            for i in range(runs):
                say(f"[{label}] {kind}: start -> {n} workers exec'd, run {i + 1} of {runs}")
                xs.append(spawn_run(kind, n, 120))
            res[kind] = xs
            details.append(f"- start → {n} exec'd, {kind} (ms, each run): "
                           + ", ".join(f"{x:.0f}" for x in xs))
        except Failed as e:
            res[kind] = str(e)
            details.append(f"- start → {n} exec'd, {kind}: failed: {e}")
            reap_stamps()

    def cell(v):
        if isinstance(v, str):
            return v
        med, mn = median_min(v)
        return f"{med:.0f} ms (min {mn:.0f})"

    ratio = "–"
    if all(isinstance(res[k], list) for k in res):
        ratio = f"{statistics.median(res['corral']) / statistics.median(res['floor']):.2f}×"
    table.append((f"start → {n} `stamp` workers exec'd, median of {runs}",
                  cell(res["corral"]), cell(res["floor"]), "–", ratio, GOALS["spawn"]))
    return res


def row_start(table, details):
    measure_spawn(N_START, RUNS_START, table, details, "1")


def row_big(table, details):
    measure_spawn(N_BIG, RUNS_BIG, table, details, "2")
    say(f"[2] corral --log-format json: {N_BIG} workers, event timestamps")
    try:
        r = spawn_json_run(N_BIG, 120)
        details.append(
            f"- {N_BIG} workers, corral --log-format json, stdout a pipe: all exec'd after "
            f"{r['all_ms']:.0f} ms, first spawned line read after {r['first_ms']:.0f} ms; "
            f"spawned \"ts\" − stamp REAL over {r['n_events']} events: min {r['min']:+.1f}, "
            f"max {r['max']:+.1f} ms (ts has ms resolution)")
        table.append((f"{N_BIG} workers, `--log-format json`: spawned event \"ts\" − the "
                      "worker's own exec wall clock, median / max abs.",
                      f"{r['median_abs']:.1f} / {r['max_abs']:.1f} ms", "–", "–", "–",
                      GOALS["ts"]))
        table.append((f"{N_BIG} workers, `--log-format json`: first \"spawned\" line read "
                      "from corral's stdout",
                      f"{r['first_ms']:.0f} ms (all exec'd at {r['all_ms']:.0f} ms)", "–", "–",
                      "–", GOALS["first"]))
    except Failed as e:
        reap_stamps()
        table.append((f"{N_BIG} workers, `--log-format json`: event timestamps", str(e),
                      "–", "–", "–", GOALS["ts"]))


# ---------------------------------------------------------------------------------------
# 3 and 6: corral with its dashboard in a pseudo-terminal.

class Pty:
    def __init__(self, rows=40, cols=120):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.bytes = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)

    def _drain(self):
        while True:
            try:
                b = os.read(self.master, 1 << 16)
            except OSError:
                return  # EIO: every slave descriptor closed
            if not b:
                return
            self.bytes += len(b)

    def launch(self, argv, env):
        env = dict(env, TERM="xterm-256color")
        # A session of its own with the pty as controlling terminal, as in a real terminal.
        p = launch(argv, env=env, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                   start_new_session=True,
                   preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(self.slave)
        self.slave = None
        self.thread.start()
        return p

    def close(self):
        if self.slave is not None:
            os.close(self.slave)
        self.thread.join(5)
        os.close(self.master)


def dashboard_idle(n):
    st = Stamps()
    term = Pty()
    p = None
    try:
        p = term.launch([CORRAL, "-w", str(n), "--", STAMP], st.env)
        st.collect(n, 120, p)
        time.sleep(DASH_SETTLE)
        if p.poll() is not None:
            raise Failed(f"corral exited ({p.returncode})")
        b0, c0, t0 = term.bytes, cpu_ticks(p.pid), mono()
        time.sleep(DASH_WINDOW)
        c1, t1, b1 = cpu_ticks(p.pid), mono(), term.bytes
        if term.bytes == 0:
            raise Failed("corral drew nothing on the terminal")
        secs = (t1 - t0) / 1e9
        return 100 * (c1 - c0) / CLK_TCK / secs, (b1 - b0) / secs
    finally:
        if p is not None:
            stop(p, 60)
        term.close()
        reap_stamps()
        st.close()


def row_dashboard(table, details):
    for n in (N_DASH, N_DASH_SMALL):
        say(f"[3] dashboard idle CPU at {n} workers ({DASH_SETTLE:.0f} s settle, "
            f"{DASH_WINDOW:.0f} s window)")
        try:
            cpu, bps = dashboard_idle(n)
            c = f"{cpu:.2f} % of a core"
            details.append(f"- dashboard at {n} workers, idle: corral {cpu:.2f} % of a core, "
                           f"drawing {bps / 1024:.1f} KiB/s to the terminal (120×40)")
        except Failed as e:
            c = str(e)
        table.append((f"dashboard idle CPU, {n} workers (pty 120×40, {DASH_WINDOW:.0f} s)",
                      c, "0 (nothing to draw)", "–", "–",
                      GOALS["dash"] if n == N_DASH else ""))


def yes_corral():
    d = tempfile.mkdtemp(dir=WORK, prefix="run.")
    term = Pty()
    p = None
    try:
        t0 = time.monotonic()
        p = term.launch([CORRAL, "-w", "1", "--", "yes"], dict(os.environ, XDG_RUNTIME_DIR=d))
        ypid = None
        while ypid is None and time.monotonic() - t0 < 10:
            ypid = next((c for c in children(p.pid) if comm(c) == "yes"), None)
            if ypid is None:
                time.sleep(0.01)
        if ypid is None:
            raise Failed("no yes worker appeared")
        time.sleep(max(0.0, t0 + YES_WINDOW - time.monotonic()))
        wchar = io_field(ypid, "wchar")
        ticks = cpu_ticks(p.pid)
        if p.poll() is not None:
            raise Failed(f"corral exited ({p.returncode})")
        return ticks / CLK_TCK, wchar / 1e9
    finally:
        if p is not None:
            stop(p, 30)
        term.close()


def yes_cat():
    y = launch(["yes"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    c = launch(["cat"], stdin=y.stdout, stdout=subprocess.DEVNULL)
    y.stdout.close()
    try:
        time.sleep(YES_WINDOW)
        rchar, ticks = io_field(c.pid, "rchar"), cpu_ticks(c.pid)
        return ticks / CLK_TCK, rchar / 1e9
    finally:
        stop(y, 5)
        stop(c, 5)


def row_yes(table, details):
    res = {}
    for kind, fn in (("corral", yes_corral), ("cat", yes_cat)):
        say(f"[6] `yes` for {YES_WINDOW:.0f} s: {kind}")
        try:
            cpu, gb = fn()
            if gb <= 0:
                raise Failed("no data moved")
            res[kind] = cpu / gb
            what = "corral's CPU (utime+stime) while its dashboard shows a `yes` worker" \
                if kind == "corral" else "cat's CPU in `yes | cat > /dev/null`"
            details.append(f"- {what}: {cpu:.2f} s for {gb:.2f} GB in {YES_WINDOW:.0f} s "
                           f"({gb / YES_WINDOW:.2f} GB/s) → {res[kind]:.2f} CPU s per GB")
        except (Failed, OSError) as e:
            res[kind] = str(e)

    def cell(v):
        return v if isinstance(v, str) else f"{v:.2f} CPU s per GB"

    ratio = f"{res['corral'] / res['cat']:.2f}×" if all(
        not isinstance(v, str) for v in res.values()) else "–"
    table.append((f"a worker running `yes`, dashboard in a pty ({YES_WINDOW:.0f} s): "
                  "supervisor CPU per GB drained (floor: `cat`)",
                  cell(res["corral"]), cell(res["cat"]), "–", ratio, GOALS["yes"]))


# ---------------------------------------------------------------------------------------
# 4: kill -9 -> replacement exec.

def restart_samples(sup_pid, st, sup, kills):
    """Kills a worker (a child of SUP_PID that sent its stamp) KILLS times; each sample is
    the replacement's stamp MONO minus the MONO just before the kill, in ms."""
    got = st.collect(RESTART_WORKERS, 60, sup)
    live = set(got)
    samples, timeouts = [], 0
    end = time.monotonic() + 30 + kills * 0.5
    for i in range(kills):
        if time.monotonic() > end:
            raise Failed(f"took too long ({len(samples)} of {kills} kills)")
        kids = sorted(set(children(sup_pid)) & live)
        if not kids:
            # Every replacement arrived but none is a child yet (or the workers are gone).
            time.sleep(0.01)
            kids = sorted(set(children(sup_pid)) & live)
            if not kids:
                raise Failed(f"no worker to kill after {len(samples)} kills")
        victim = kids[i % len(kids)]
        k = mono()
        os.kill(victim, signal.SIGKILL)
        live.discard(victim)
        deadline = time.monotonic() + 5
        while True:
            s = st.recv(deadline - time.monotonic())
            if s is None:
                timeouts += 1
                break
            if s[0] not in live and s[0] != victim:
                live.add(s[0])
                samples.append((s[1] - k) / 1e6)
                break
        if timeouts > 3:
            raise Failed(f"{timeouts} kills without a replacement in 5 s")
        time.sleep(KILL_GAP)
    return samples, timeouts


def restart_local(kind, kills):
    st = Stamps()
    p = None
    try:
        argv = [CORRAL, "--no-ui", "--backoff", "0", "-w", str(RESTART_WORKERS), "--", STAMP] \
            if kind == "corral" else [FLOOR, str(RESTART_WORKERS), STAMP]
        p = launch(argv, env=st.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=errfile(f"restart-{kind}"))
        return restart_samples(p.pid, st, p, kills)
    finally:
        if p is not None:
            stop(p, 30)
        reap_stamps()
        st.close()


class Pm2Daemon:
    """Stands in for the supervisor's Popen in Stamps.collect."""

    returncode = "PM2 daemon gone"

    def poll(self):
        return None if alive(pm2_daemon_pid() or -1) else self.returncode


def restart_pm2(kills):
    if not PM2:
        raise Failed("PM2 not installed")
    st = Stamps()
    try:
        pm2("ping")  # starts the daemon
        # PM2 7 has no --min-uptime on the command line (an ecosystem file's min_uptime, 1 s
        # by default): with kills ~130 ms apart per instance every restart is "unstable", so
        # --max-restarts is set high enough never to stop the app.
        pm2("start", STAMP, "-i", str(RESTART_WORKERS), "--interpreter", "none", "--name",
            "scale-restart", "--restart-delay", "0", "--max-restarts", "100000",
            env_extra={"STAMP_SOCK": st.path})
        sup_pid = pm2_daemon_pid()
        if sup_pid is None:
            raise Failed("no PM2 daemon pid")
        mode = {a["pm2_env"].get("exec_mode") for a in json.loads(pm2("jlist"))
                if a.get("name") == "scale-restart"}
        try:
            samples, timeouts = restart_samples(sup_pid, st, Pm2Daemon(), kills)
        finally:
            pm2("delete", "scale-restart", check=False)
            reap_stamps()
        return samples, timeouts, ",".join(sorted(mode))
    finally:
        st.close()


def row_restart(table, details):
    res = {}
    for kind in ("corral", "floor", "pm2"):
        say(f"[4] kill -9 → replacement exec: {kind}, {KILLS} kills")
        try:
            if kind == "pm2":
                samples, timeouts, mode = restart_pm2(KILLS)
                mode = f" ({mode})"
            else:
                samples, timeouts = restart_local(kind, KILLS)
                mode = ""
            if not samples:
                raise Failed("no replacement seen")
            res[kind] = samples
            details.append(
                f"- kill -9 → replacement exec, {kind}{mode}: {len(samples)} samples"
                f"{f', {timeouts} kills without a replacement in 5 s' if timeouts else ''}; "
                f"p50 {pct(samples, .5):.2f}, p90 {pct(samples, .9):.2f}, "
                f"p99 {pct(samples, .99):.2f}, max {max(samples):.2f} ms")
        except (Failed, OSError, ValueError) as e:
            res[kind] = f"failed: {e}"
            details.append(f"- kill -9 → replacement exec, {kind}: failed: {e}")
            reap_stamps()

    for q, name, goal in ((.5, "p50", GOALS["restart50"]), (.99, "p99", GOALS["restart99"])):
        cells = [f"{pct(v, q):.2f} ms" if isinstance(v, list) else v
                 for v in (res["corral"], res["floor"], res["pm2"])]
        ratio = f"{pct(res['corral'], q) / pct(res['floor'], q):.2f}×" if all(
            isinstance(res[k], list) for k in ("corral", "floor")) else "–"
        table.append((f"kill -9 → replacement exec, {name} of {KILLS} "
                      f"({RESTART_WORKERS} workers; corral `--backoff 0`)", *cells, ratio, goal))


# ---------------------------------------------------------------------------------------
# 5: short lines through headless output to a file.

def expected_lines():
    return [str(i).encode() for i in range(1, LINES + 1)]


def check_text(path, want):
    with open(path, "rb") as f:
        data = f.read()
    got = [l[l.index(b" | ") + 3:] for l in data.split(b"\n") if b" | " in l]
    return compare(got, want)


def check_json(path, want):
    got = []
    with open(path, "rb") as f:
        for l in f:
            if b'"event":"output"' not in l:
                continue
            i = l.rfind(b'"line":"')
            got.append(l[i + 8:l.rindex(b'"')])
    return compare(got, want)


def check_raw(path, want):
    with open(path, "rb") as f:
        return compare(f.read().split(b"\n")[:-1], want)


def compare(got, want):
    """'' when GOT holds every line of WANT in order, else what is wrong."""
    if got == want:
        return ""
    missing = len(set(want) - set(got))
    return f"{len(got):,} lines, {missing:,} numbers missing" if missing else \
        f"{len(got):,} lines, out of order or duplicated"


def lines_local(kind, out):
    d = tempfile.mkdtemp(dir=WORK, prefix="run.")
    env = dict(os.environ, XDG_RUNTIME_DIR=d)
    argv = ["seq", str(LINES)] if kind == "floor" else \
        [CORRAL, "--no-ui", "--log-format", "json" if kind == "corral-json" else "text", "-w",
         "1", "--restart", "never", "--", "seq", str(LINES)]
    with open(out, "wb") as f:
        t0 = mono()
        p = launch(argv, env=env, stdin=subprocess.DEVNULL, stdout=f,
                   stderr=errfile(f"lines-{kind}"))
        try:
            rc = p.wait(120)
        except subprocess.TimeoutExpired:
            stop(p, 5)
            raise Failed("did not finish in 120 s")
        t1 = mono()
    stop(p)
    if rc != 0:
        raise Failed(f"exited {rc}")
    return (t1 - t0) / 1e9


def lines_pm2(out, i, size):
    """From `pm2 start` (daemon already running) until OUT holds all SIZE bytes, and from
    its first byte to the last; None, None when it stops growing short of SIZE (2 s without
    a byte: PM2 lost the tail)."""
    err = out + ".err"
    first, done, stop_poll = [None], [None], threading.Event()

    def poll():
        last_size, last_change = 0, time.monotonic()
        while not stop_poll.is_set():
            try:
                s = os.stat(out).st_size
            except FileNotFoundError:
                s = 0
            now = mono()
            if s and first[0] is None:
                first[0] = now
            if s >= size:
                done[0] = now
                return
            if s != last_size:
                last_size, last_change = s, time.monotonic()
            elif s and time.monotonic() - last_change > 2:
                return
            time.sleep(0.005 if first[0] is None else 0.02)

    th = threading.Thread(target=poll, daemon=True)
    name = f"scale-lines-{i}"
    t0 = mono()
    th.start()
    try:
        pm2("start", "seq", "--interpreter", "none", "--no-autorestart", "--name", name,
            "-o", out, "-e", err, "--", str(LINES))
        th.join(60)
    finally:
        stop_poll.set()
        th.join(1)
        pm2("delete", name, check=False)
    if first[0] is None:
        raise Failed("PM2 wrote nothing to its log file")
    if done[0] is None:
        return None, None
    return (done[0] - t0) / 1e9, (done[0] - first[0]) / 1e9


def row_lines(table, details):
    want = expected_lines()
    size = sum(len(w) + 1 for w in want)
    # kind: failure text, or (times of complete runs, notes of runs that lost lines, PM2's
    # times from the log file's first byte to its last)
    res = {}
    checks = {"corral": check_text, "corral-json": check_json, "floor": check_raw,
              "pm2": check_raw}
    if PM2:
        try:
            pm2("ping")
        except Failed as e:
            res["pm2"] = str(e)
    else:
        res["pm2"] = "PM2 not installed"
    for kind in ("corral", "corral-json", "floor", "pm2"):
        if kind in res:
            continue
        xs, drains, notes = [], [], []
        try:
            for i in range(RUNS_LINES):
                say(f"[5] {LINES:,} lines to a file: {kind}, run {i + 1} of {RUNS_LINES}")
                out = os.path.join(WORK, f"lines-{kind}-{i}.out")
                if kind == "pm2":
                    t, drain = lines_pm2(out, i, size)
                    if drain is not None:
                        drains.append(drain)
                else:
                    t = lines_local(kind, out)
                bad = checks[kind](out, want)
                if bad:
                    notes.append(f"run {i + 1}: {bad}")
                    t = None  # a run that lost lines has no time worth comparing
                else:
                    os.unlink(out)
                if t is not None:
                    xs.append(t)
            res[kind] = (xs, notes, drains)
            details.append(
                f"- {LINES:,} lines, {kind} (s, each complete run): "
                + (", ".join(f"{x:.3f}" for x in xs) or "none")
                + (f"; from the log file's first byte to its last: "
                   + ", ".join(f"{x:.3f}" for x in drains) if drains else "")
                + ("; CHECK FAILED: " + "; ".join(notes) if notes
                   else "; every line there, in order"))
        except (Failed, OSError) as e:
            res[kind] = f"failed: {e}"

    def cell(v):
        if isinstance(v, str):
            return v
        xs, notes, drains = v
        c = f"{statistics.median(xs):.3f} s" if xs else "no complete run"
        if drains:
            c += f" (first byte → last: {statistics.median(drains):.3f} s)"
        if notes:
            c += f" ({len(notes)} of {RUNS_LINES} runs lost lines: " + "; ".join(notes) + ")"
        return c

    def med(kind):
        v = res[kind]
        return None if isinstance(v, str) or not v[0] else statistics.median(v[0])

    for kind, what in (("corral", "text"), ("corral-json", "`--log-format json`")):
        ratio = f"{med(kind) / med('floor'):.1f}×" if med(kind) and med("floor") else "–"
        pm2_cell = cell(res["pm2"])
        if kind == "corral-json" and not isinstance(res["pm2"], str):
            pm2_cell = "(PM2 has no JSON lines: as above)"
        table.append((f"{LINES:,} short lines (`seq {LINES}`) through headless {what} to a "
                      f"file, median of {RUNS_LINES}",
                      cell(res[kind]), cell(res["floor"]) + " (`seq > FILE`)", pm2_cell, ratio,
                      GOALS["lines"] if kind == "corral" else GOALS["lines_json"]))


# ---------------------------------------------------------------------------------------

GOALS = {  # from issue 13
    "spawn": "≤ 1.2× floor",
    "ts": "ts when it happened",
    "first": "",
    "dash": "≤ 1 % at 1000",
    "restart50": "≤ 1.2× floor",
    "restart99": "≤ 2× floor's p99",
    "lines": "≥ PM2's rate, every line timestamped, none lost",
    "lines_json": "none lost",
    "yes": "≤ 2× cat",
}

MEASURES = {"start": row_start, "big": row_big, "dashboard": row_dashboard,
            "restart": row_restart, "lines": row_lines, "yes": row_yes}


def version(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def main():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    for path in (STAMP, FLOOR, CORRAL):
        if not os.access(path, os.X_OK):
            sys.exit(f"measure.py: {path!r} is not executable (run benches/scale.sh)")
    os.makedirs(WORK, exist_ok=True)
    wanted = []
    for w in ROWS.replace(",", " ").split():
        name = ROW_NAMES[int(w) - 1] if w.isdigit() and 1 <= int(w) <= 6 else w
        if name not in MEASURES:
            sys.exit(f"measure.py: unknown measure {w!r} in SCALE_ROWS (1-6 or {ROW_NAMES})")
        wanted.append(name)
    table, details = [], []
    started = time.monotonic()
    try:
        for name in ROW_NAMES:
            if name in wanted:
                MEASURES[name](table, details)
    finally:
        cleanup()
    say(f"done in {time.monotonic() - started:.0f} s")

    pm2_version = "not installed"
    if PM2:
        try:
            with open(os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(PM2))),
                                   "package.json")) as f:
                pm2_version = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            pm2_version = "?"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    mtime = datetime.datetime.fromtimestamp(os.stat(CORRAL).st_mtime, datetime.timezone.utc)
    versions = [f"{version([CORRAL, '--version'])} "
                f"({os.environ.get('SCALE_CORRAL_REV', '?')}, binary built {mtime:%Y-%m-%dT%H:%MZ})",
                f"PM2 {pm2_version}" + (f" on Node {version(['node', '--version'])}" if PM2 else ""),
                f"gcc {version(['gcc', '-dumpfullversion'])}",
                (version(["seq", "--version"]).splitlines() or ["seq ?"])[0],
                f"Python {platform.python_version()}"]
    out = [
        "# corral at scale, beside the floor and PM2",
        "",
        f"- machine: {os.cpu_count()} CPUs, {cpu}, Linux {platform.release()}, load average "
        f"at the end {load}",
        f"- versions: {', '.join(versions)}",
        f"- command: `{COMMAND}`",
        f"- run on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%MZ}"
        + (" (SCALE_QUICK: small sizes)" if QUICK else ""),
        "",
        "| figure (same run) | corral | floor | PM2 7 (fork mode) | corral ÷ floor | goal (issue 13) |",
        "|---|---|---|---|---|---|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in table]
    out += [
        "",
        "How each is measured (benches/scale/measure.py):",
        "",
        "- floor: `benches/scale/floor.c` (vfork+exec, restarts a dead child at once, drains "
        "the pipes); the worker `benches/scale/stamp.c` sends `PID MONO_NS REAL_NS` to a unix "
        "datagram socket at the top of main, then pause()s.",
        f"- start → N: from just before launching `corral --no-ui -w N -- stamp` or "
        f"`floor N stamp` to the latest stamp's MONO_NS; each run in its own XDG_RUNTIME_DIR. "
        f"The json rows: one more `corral --no-ui --log-format json -w {N_BIG}` run, stdout a "
        f"pipe read by the script.",
        f"- dashboard idle: `corral -w N -- stamp` in a pty (120×40, drained by a thread), "
        f"after every stamp arrived + {DASH_SETTLE:.0f} s, corral's utime+stime over "
        f"{DASH_WINDOW:.0f} s.",
        f"- kill -9 → exec: {RESTART_WORKERS} stamp workers; a child of the supervisor whose "
        f"stamp arrived gets SIGKILL, the sample is the replacement's stamp MONO minus MONO "
        f"just before the kill; the next kill {KILL_GAP * 1e3:.0f} ms after the replacement "
        f"arrived. corral `--no-ui --backoff 0 -w {RESTART_WORKERS}`, `floor {RESTART_WORKERS}`, "
        f"`pm2 start stamp -i {RESTART_WORKERS} --interpreter none --restart-delay 0 "
        f"--max-restarts 100000` (private PM2_HOME).",
        f"- lines: `corral --no-ui [--log-format json] -w 1 --restart never -- seq {LINES} > "
        f"FILE` until corral exits; floor `seq {LINES} > FILE`; PM2 `pm2 start seq "
        f"--interpreter none --no-autorestart -o FILE -- {LINES}` (daemon already running) "
        f"until FILE holds all {size_of(LINES):,} bytes (polled every 20 ms; PM2 writes the "
        f"lines without timestamps); that includes the pm2 CLI's own start (Node), so the PM2 "
        f"cell also gives the time from the log file's first byte to its last. A PM2 run whose "
        f"file stops growing short of that (2 s without a byte) lost lines and has no time. "
        f"Each output is checked: every number, in order.",
        f"- yes: `corral -w 1 -- yes` in a pty, corral's utime+stime over its first "
        f"{YES_WINDOW:.0f} s ÷ the bytes yes wrote (`wchar`); floor `yes | cat > /dev/null`, "
        f"cat's utime+stime ÷ its `rchar`.",
        "",
        "Details:",
        "",
    ] + details
    text = "\n".join(out) + "\n"
    if RESULTS:
        with open(RESULTS, "w") as f:
            f.write(text)
    sys.stdout.write(text)


def size_of(n):
    return sum(len(str(i)) + 1 for i in range(1, n + 1))


if __name__ == "__main__":
    main()
