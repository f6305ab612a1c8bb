#!/usr/bin/env python3
"""Session stores against each other, by hand: what SESSION_STORE=memory adds to a warm tool turn over none,
with finer resolution than `make bench`'s rows (thousands of turns in a few seconds: the stand-ins of
`bench --stand-ins` add no chunk delay). Several instances run side by side, each a (binary, store) arm —
two binaries compare a change with the commit before it — and serve N sequential warm tool turns each over
one keep-alive connection, in 5 interleaved rounds so all see the same machine load; every turn is a new
session of one user. Per arm: the client's request-to-last-byte median, and the process's CPU (user and
system) per turn from /proc/PID/stat. Linux only.

usage: stores.py REPO BINARY:STORE[,BINARY:STORE...] [N]     (N=2000; BINARY may be 'release')
`make bench-stores` runs it for the release binary with memory and none."""
import http.client, json, os, socket, subprocess, sys, time, urllib.request, uuid

repo = sys.argv[1]
arms = [a.split(":", 1) for a in sys.argv[2].split(",")]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
WARM, ROUNDS = 30, 5
TICK = os.sysconf("SC_CLK_TCK")
RELEASE = f"{repo}/target/release/fc-identity-agent"

stands = subprocess.Popen([f"{repo}/target/release/bench", "--stand-ins"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
env = {}
for line in stands.stdout:
    if line.startswith("stand-ins running"):
        break
    if "=" in line:
        k, v = line.strip().split("=", 1); env[k] = v

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

class Arm:
    def __init__(self, binary, store):
        binary = RELEASE if binary == "release" else binary
        self.name = f"{os.path.basename(binary)} {store}"
        self.port = free_port()
        e = dict(os.environ, **env, FC_SERVER_PORT=str(self.port), RUST_LOG="warn", SESSION_STORE=store)
        self.proc = subprocess.Popen([binary], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2); break
            except Exception:
                time.sleep(0.1)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.walls = []

    def turn(self, timed=True):
        body = json.dumps({"input": [{"role": "user", "type": "message",
                                      "content": [{"type": "text", "text": "Tell me the time in UTC"}]}],
                           "session_id": uuid.uuid4().hex, "user_id": "u1"})
        began = time.perf_counter()
        self.conn.request("POST", "/process", body, {"content-type": "application/json"})
        data = self.conn.getresponse().read().decode()
        if timed:
            self.walls.append(time.perf_counter() - began)
        # A tool turn that did not run its tool or did not complete is not a figure.
        assert ("getutctime" in data or "The tool said" in data) and '"status":"completed"' in data, data[-300:]

    def cpu(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return int(fields[11]) / TICK, int(fields[12]) / TICK  # utime, stime in seconds

arms = [Arm(b, s) for b, s in arms]
try:
    for arm in arms:
        for _ in range(WARM):
            arm.turn(timed=False)
    before = {id(a): a.cpu() for a in arms}
    for _ in range(ROUNDS):
        for arm in arms:
            for _ in range(N // ROUNDS):
                arm.turn()
    for arm in arms:
        (u0, s0), (u1, s1) = before[id(arm)], arm.cpu()
        walls = sorted(arm.walls)
        turns = len(walls)
        print(f"{arm.name:40s} wall median {walls[turns // 2] * 1e3:.3f} ms   CPU {(u1 - u0 + s1 - s0) / turns * 1e3:.3f} "
              f"ms/turn (user {(u1 - u0) / turns * 1e3:.3f}, system {(s1 - s0) / turns * 1e3:.3f})   n={turns}", flush=True)
finally:
    for arm in arms:
        arm.proc.kill()
    stands.kill()
