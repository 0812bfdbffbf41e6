#!/usr/bin/env python3
"""Failover benchmark: kill -9 a master under a writing client and time every step.

Runs N failovers at each down-after (1000 ms and 5000 ms) with Vigil sentinels and, when
redis-server is installed, the same topology under Redis Sentinel, and prints per-step
median/min/max in milliseconds after the kill:

  sdown      first +sdown of the master at any sentinel
  odown      first +odown
  elected    +elected-leader
  promoted   +promoted-slave
  switched   the last sentinel's +switch-master (every sentinel knows the new master)
  write      first write acknowledged by the new master (client writes every 10 ms)
  lost       writes acknowledged (by any master) and missing on the new master afterwards

`bench/failover.sh pause [RUNS] [DOWN_AFTER]` runs the pause scenario instead: SIGSTOP the master
for 3 x down-after while a client that never rediscovers keeps writing to it, SIGCONT, and count
the writes the old master acknowledges after resuming (every one of them is lost), and the time
until it reports role:slave.

`bench/failover.sh notify [RUNS] [SUBSCRIBERS]`: SUBSCRIBERS gRPC WatchMaster streams over the
three sentinels; latency from the leader's `+promoted-slave` timestamp to each MasterChanged.
`bench/failover.sh switchover [RUNS]`: SENTINEL SWITCHOVER under a writer; the longest pause
between acknowledged writes and any acknowledged write missing afterwards.

Only the Python standard library is used. Usage: bench/failover.sh [RUNS] [DOWN_AFTERS]
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

VIGIL = os.environ.get("VIGIL", "target/release/vigil")
GROUP = "g"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Reader:
    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-"):
            return (t + rest).decode(errors="replace")
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode(errors="replace")
        if t in (b"*", b">"):
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError("bad reply %r" % line)


def cmd(port, *args, timeout=1.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(enc(*args))
        return Reader(s).read()


def wait(what, cond, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(what)


class Events(threading.Thread):
    """PSUBSCRIBE * on one sentinel, recording (time, channel, payload)."""

    def __init__(self, idx, port, sink):
        super().__init__(daemon=True)
        self.idx, self.port, self.sink = idx, port, sink
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=None)
        self.sock.sendall(enc("PSUBSCRIBE", "*"))

    def run(self):
        r = Reader(self.sock)
        try:
            while True:
                m = r.read()
                if isinstance(m, list) and len(m) == 4 and m[0] == "pmessage":
                    self.sink.append((time.time(), self.idx, m[2], m[3]))
        except (OSError, ConnectionError, ValueError):
            return


class Writer(threading.Thread):
    """Writes a new key every 10 ms to whichever master the sentinels name."""

    def __init__(self, sentinel_ports, master_port):
        super().__init__(daemon=True)
        self.sentinels = sentinel_ports
        self.master = master_port
        self.acked = []  # (time, key, master_port)
        self.stop = False

    def run(self):
        i = 0
        conn = None
        while not self.stop:
            t = time.time()
            key = "k%d" % i
            i += 1
            try:
                if conn is None:
                    conn = socket.create_connection(("127.0.0.1", self.master), timeout=0.2)
                    reader = Reader(conn)
                conn.sendall(enc("SET", key, "v"))
                reply = reader.read()
                if reply == "+OK":
                    self.acked.append((time.time(), key, self.master))
                else:
                    raise ConnectionError(str(reply))
            except (OSError, ConnectionError, ValueError):
                if conn is not None:
                    conn.close()
                conn = None
                for sp in self.sentinels:
                    try:
                        a = cmd(sp, "SENTINEL", "get-master-addr-by-name", GROUP, timeout=0.2)
                        if a:
                            self.master = int(a[1])
                            break
                    except (OSError, ConnectionError, ValueError):
                        continue
            time.sleep(max(0.0, 0.01 - (time.time() - t)))


class StaleWriter(threading.Thread):
    """A client that never rediscovers: keeps writing to the old master's address."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.acked = []  # times of +OK replies
        self.refused = {}
        self.stop = False

    def run(self):
        conn = None
        i = 0
        while not self.stop:
            t = time.time()
            try:
                if conn is None:
                    conn = socket.create_connection(("127.0.0.1", self.port), timeout=0.2)
                    reader = Reader(conn)
                conn.sendall(enc("SET", "stale%d" % i, "v"))
                i += 1
                reply = reader.read()
                if reply == "+OK":
                    self.acked.append(time.time())
                else:
                    word = str(reply).split(" ")[0]
                    self.refused[word] = self.refused.get(word, 0) + 1
            except (OSError, ConnectionError, ValueError):
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(max(0.0, 0.01 - (time.time() - t)))


def pause_run(kind, down_after):
    """SIGSTOP the master for 3 x down-after, then SIGCONT: how many writes does the old master
    acknowledge after it resumes (all of them are lost), and how long until it is a replica?"""
    c = Cluster(kind, down_after)
    try:
        c.start()
        old = c.nodes[0]
        w = Writer(c.sentinels, old)
        w.start()
        time.sleep(1.0)
        t0 = time.time()
        c.master_proc.send_signal(signal.SIGSTOP)
        stale = StaleWriter(old)
        stale.start()
        def failed_over():
            a = cmd(c.sentinels[0], "SENTINEL", "get-master-addr-by-name", GROUP, timeout=0.3)
            return int(a[1]) != old
        wait("failover", failed_over, timeout=down_after / 1000 * 3 + 30)
        time.sleep(max(0.0, t0 + 3 * down_after / 1000 - time.time()))
        c.master_proc.send_signal(signal.SIGCONT)
        t1 = time.time()
        def demoted():
            r = cmd(old, "ROLE", timeout=0.3)
            return r and r[0] == "slave"
        wait("old master demoted", demoted, timeout=30)
        t2 = time.time()
        time.sleep(0.5)
        stale.stop = True
        w.stop = True
        stale.join()
        w.join()
        after = len([t for t in stale.acked if t >= t1])
        return {"acked_after_resume": after, "demoted_ms": (t2 - t1) * 1000,
                "refused": stale.refused}
    finally:
        try:
            c.master_proc.send_signal(signal.SIGCONT)
        except OSError:
            pass
        c.stop()


def notify_run(subscribers, down_after, helper):
    """kill -9 under SUBSCRIBERS WatchMaster streams; latency from +promoted-slave to each."""
    c = Cluster("vigil", down_after)
    try:
        c.start()
        ca = os.path.join(c.dir, "certs", "ca.crt")
        p = subprocess.Popen([helper, ca, str(subscribers)] +
                             ["127.0.0.1:%d" % g for g in c.grpcs],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        c.procs.append(p)
        if p.stdout.readline().strip() != "READY":
            raise TimeoutError("subscribers did not start")
        c.master_proc.send_signal(signal.SIGKILL)
        import json
        return json.loads(p.stdout.readline())
    finally:
        c.stop()


def switchover_run(down_after):
    """A planned switchover under a writer: the longest gap between acknowledged writes, and
    acknowledged writes missing from the new master."""
    c = Cluster("vigil", down_after)
    try:
        c.start()
        old = c.nodes[0]
        w = Writer(c.sentinels, old)
        w.start()
        time.sleep(1.0)
        assert cmd(c.sentinels[1], "SENTINEL", "SWITCHOVER", GROUP) == "+OK"

        def done():
            a = cmd(c.sentinels[0], "SENTINEL", "get-master-addr-by-name", GROUP, timeout=0.3)
            new = int(a[1])
            return new != old and any(m == new for _, _, m in w.acked)
        wait("switchover", done, timeout=30)
        time.sleep(0.5)
        w.stop = True
        w.join()
        new = int(cmd(c.sentinels[0], "SENTINEL", "get-master-addr-by-name", GROUP)[1])
        times = [t for t, _, _ in w.acked]
        gap = max(b - a for a, b in zip(times, times[1:])) * 1000
        lost = sum(1 for _, k, _ in w.acked if cmd(new, "EXISTS", k) != 1)
        return {"pause_ms": gap, "lost": lost, "acked": len(w.acked)}
    finally:
        c.stop()


class Cluster:
    def __init__(self, kind, down_after):
        self.kind, self.down_after = kind, down_after
        self.dir = tempfile.mkdtemp(prefix="vigil-bench-")
        self.procs = []
        self.nodes = [free_port() for _ in range(3)]
        self.sentinels = [free_port() for _ in range(3)]
        self.grpcs = [free_port() for _ in range(3)]

    def spawn(self, args, **kw):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def start(self):
        m = self.nodes[0]
        for i, port in enumerate(self.nodes):
            d = os.path.join(self.dir, "n%d" % i)
            os.makedirs(d)
            if self.kind == "vigil":
                args = [VIGIL, "datanode", "--bind", "127.0.0.1", "--port", str(port),
                        "--save", "", "--dir", d]
                if i:
                    args += ["--replicaof", "127.0.0.1:%d" % m]
            else:
                args = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                        "--appendonly", "no", "--dir", d]
                if i:
                    args += ["--replicaof", "127.0.0.1", str(m)]
            p = self.spawn(args)
            if i == 0:
                self.master_proc = p
            wait("data node", lambda port=port: cmd(port, "PING") == "+PONG")
        # Attached is not enough: Redis 7 delays a diskless full sync by 5 s by default.
        for port in self.nodes[1:]:
            wait("replica synced", lambda port=port: "master_link_status:up"
                 in cmd(port, "INFO", "replication"))
        if self.kind == "vigil":
            certs = os.path.join(self.dir, "certs")
            subprocess.run([VIGIL, "certs", "init", "--dir", certs], check=True,
                           stdout=subprocess.DEVNULL)
        for i, port in enumerate(self.sentinels):
            d = os.path.join(self.dir, "s%d" % i)
            os.makedirs(d)
            if self.kind == "vigil":
                name = "s%d" % i
                subprocess.run([VIGIL, "certs", "issue", "--dir", certs, "--name", name,
                                "--host", "127.0.0.1"], check=True, stdout=subprocess.DEVNULL)
                join = 'join = ["127.0.0.1:%d"]\n' % self.sentinels[0] if i else ""
                conf = os.path.join(d, "sentinel.toml")
                with open(conf, "w") as f:
                    f.write('dir = "%s"\ngossip = "127.0.0.1:%d"\nresp = "127.0.0.1:%d"\n'
                            'grpc = "127.0.0.1:%d"\n%s\n'
                            '[tls]\nca = "%s/ca.crt"\ncert = "%s/%s.crt"\nkey = "%s/%s.key"\n\n'
                            '[[group]]\nname = "%s"\nmaster = "127.0.0.1:%d"\nquorum = 2\n'
                            'down-after-ms = %d\nfailover-timeout-ms = 10000\n'
                            % (d, port, port, self.grpcs[i], join, certs, certs, name, certs,
                               name, GROUP, m, self.down_after))
                self.spawn([VIGIL, "sentinel", "--config", conf])
            else:
                conf = os.path.join(d, "sentinel.conf")
                with open(conf, "w") as f:
                    f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                            "sentinel monitor %s 127.0.0.1 %d 2\n"
                            "sentinel down-after-milliseconds %s %d\n"
                            "sentinel failover-timeout %s 10000\n"
                            % (port, d, GROUP, m, GROUP, self.down_after, GROUP))
                self.spawn(["redis-server", conf, "--sentinel"])
        for port in self.sentinels:
            wait("sentinel", lambda port=port: cmd(port, "PING") == "+PONG")

        def peers_known():
            for port in self.sentinels:
                info = cmd(port, "SENTINEL", "master", GROUP)
                d = dict(zip(info[::2], info[1::2]))
                if d.get("num-other-sentinels") != "2" or d.get("num-slaves") != "2":
                    return False
            return True
        wait("sentinels know each other and the replicas", peers_known, timeout=60)

    def stop(self):
        for p in self.procs:
            try:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def one_run(kind, down_after):
    c = Cluster(kind, down_after)
    try:
        c.start()
        sink = []
        for i, port in enumerate(c.sentinels):
            Events(i, port, sink).start()
        w = Writer(c.sentinels, c.nodes[0])
        w.start()
        time.sleep(1.0)
        old = c.nodes[0]
        t0 = time.time()
        c.master_proc.send_signal(signal.SIGKILL)

        def done():
            masters = set()
            for port in c.sentinels:
                a = cmd(port, "SENTINEL", "get-master-addr-by-name", GROUP, timeout=0.3)
                masters.add(int(a[1]))
            if len(masters) != 1 or old in masters:
                return False
            new = masters.pop()
            return any(m == new and t > t0 for t, _, m in w.acked)
        wait("failover", done, timeout=down_after / 1000 * 3 + 30)
        time.sleep(0.3)
        w.stop = True
        w.join()
        new = int(cmd(c.sentinels[0], "SENTINEL", "get-master-addr-by-name", GROUP)[1])

        def first(channel, pred=lambda p: True):
            ts = [t for t, _, ch, p in sink if ch == channel and t >= t0 and pred(p)]
            return (min(ts) - t0) * 1000 if ts else float("nan")
        switched = {}
        for t, i, ch, p in sink:
            if ch == "+switch-master" and t >= t0:
                switched.setdefault(i, t)
        res = {
            "sdown": first("+sdown", lambda p: p.startswith("master ")),
            "odown": first("+odown"),
            "elected": first("+elected-leader"),
            "promoted": first("+promoted-slave"),
            "switched": (max(switched.values()) - t0) * 1000 if len(switched) == 3 else float("nan"),
            "write": (min(t for t, _, m in w.acked if m == new and t > t0) - t0) * 1000,
        }
        keys = [k for _, k, _ in w.acked]
        lost = 0
        for k in keys:
            if cmd(new, "EXISTS", k) != 1:
                lost += 1
        res["lost"] = lost
        res["acked"] = len(keys)
        return res
    finally:
        c.stop()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "notify":
        runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
        subs = int(sys.argv[3]) if len(sys.argv) > 3 else 100
        helper = os.environ["NOTIFY"]
        rs = [notify_run(subs, 1000, helper) for _ in range(runs)]
        for r in rs:
            print("# %s" % r, file=sys.stderr)
        print("| subscribers | runs | heard | p50 ms (per run) | p99 ms (per run) | max ms |")
        print("|---|---|---|---|---|---|")
        print("| %d | %d | %s | %s | %s | %.1f |" % (
            subs, runs, " ".join(str(r["heard"]) for r in rs),
            " ".join("%.1f" % r["p50_ms"] for r in rs),
            " ".join("%.1f" % r["p99_ms"] for r in rs), max(r["max_ms"] for r in rs)))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "switchover":
        runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
        rs = [switchover_run(1000) for _ in range(runs)]
        for r in rs:
            print("# %s" % r, file=sys.stderr)
        pauses = [r["pause_ms"] for r in rs]
        print("| runs | longest write pause, ms (median, min–max) | lost / acknowledged |")
        print("|---|---|---|")
        print("| %d | %.0f (%.0f–%.0f) | %d / %d |" % (
            runs, statistics.median(pauses), min(pauses), max(pauses),
            sum(r["lost"] for r in rs), sum(r["acked"] for r in rs)))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "pause":
        runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
        da = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
        kinds = ["vigil"] + (["redis"] if shutil.which("redis-server") else [])
        print("| system | down-after | writes acked by the old master after it resumed | "
              "resume → old master is a replica (ms) |")
        print("|---|---|---|---|")
        for kind in kinds:
            rs = [pause_run(kind, da) for _ in range(runs)]
            for r in rs:
                print("# %s %s" % (kind, r), file=sys.stderr)
            acked = [r["acked_after_resume"] for r in rs]
            dem = [r["demoted_ms"] for r in rs]
            name = "Vigil" if kind == "vigil" else "Redis Sentinel 7"
            print("| %s | %d ms | %s | %.0f (%.0f–%.0f) |" % (
                name, da, " ".join(str(a) for a in acked), statistics.median(dem), min(dem),
                max(dem)))
        return
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    das = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1000,5000").split(",")]
    kinds = ["vigil"] + (["redis"] if shutil.which("redis-server") else [])
    steps = ["sdown", "odown", "elected", "promoted", "switched", "write", "lost"]
    print("| system | down-after | " + " | ".join(steps) + " |")
    print("|---|---|" + "---|" * len(steps))
    for da in das:
        for kind in kinds:
            results = []
            for r in range(runs):
                try:
                    results.append(one_run(kind, da))
                except TimeoutError as e:
                    print("# %s da=%d run %d: timeout (%s)" % (kind, da, r, e), file=sys.stderr)
                print("# %s da=%d run %d: %s" % (kind, da, r, results[-1] if results else "-"),
                      file=sys.stderr)
            cells = []
            for s in steps:
                v = [x[s] for x in results if x[s] == x[s]]
                if not v:
                    cells.append("-")
                elif s == "lost":
                    cells.append("%d / %d max %d" % (sum(v), sum(x["acked"] for x in results),
                                                     max(v)))
                else:
                    cells.append("%.0f (%.0f–%.0f)" % (statistics.median(v), min(v), max(v)))
            name = "Vigil" if kind == "vigil" else "Redis Sentinel 7"
            print("| %s | %d ms | %s |" % (name, da, " | ".join(cells)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
