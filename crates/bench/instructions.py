#!/usr/bin/env python3
"""Instructions per warm tool turn, per face: the release function under valgrind's callgrind, against the
bench harness's stand-ins (`bench --stand-ins`). Counts are steady where wall-clock figures on a shared
machine are not: for each face the function serves LO turns, then (a fresh process) LO + 50, and the
difference / 50 is one warm turn (start-up, the first turn's token and connections cancel out). Every turn
is a new session of one user, as in `make bench`.

usage: instructions.py REPO [--env K=V ...] [--faces process,a2a,ag-ui,responses,chat]
                         [--function [LABEL=]PATH ...] [--bench PATH]   (CG_LO=10)
--function (repeatable) measures other builds of the function against the same stand-ins, one after the
other per face (e.g. `--function before=/tmp/old/fc-identity-agent --function after=target/release/fc-identity-agent`);
by default REPO/target/release/fc-identity-agent. --bench: the harness whose stand-ins are used
(REPO/target/release/bench).
`make bench-instructions` builds the release binaries and runs it."""
import json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request, uuid
repo = sys.argv[1]; extra = {}; faces = "process,a2a,ag-ui,responses,chat".split(",")
functions = []; bench = f"{repo}/target/release/bench"
args = sys.argv[2:]
while args:
    a = args.pop(0)
    if a == "--env": k, v = args.pop(0).split("=", 1); extra[k] = v
    elif a == "--faces": faces = args.pop(0).split(",")
    elif a == "--function":
        v = args.pop(0); label, path = v.split("=", 1) if "=" in v else (v, v); functions.append((label, path))
    elif a == "--bench": bench = args.pop(0)
    else: sys.exit(f"unknown argument {a}")
if not functions: functions = [("release", f"{repo}/target/release/fc-identity-agent")]
T = "Tell me the time in UTC"
def body(face, user, s):
    return {
     "process": {"input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": T}]}], "session_id": s, "user_id": user},
     "a2a": {"jsonrpc": "2.0", "id": 1, "method": "message/stream", "params": {"message": {"kind": "message", "role": "user", "messageId": "m"+s, "contextId": s, "parts": [{"kind": "text", "text": T}], "metadata": {"user_id": user}}}},
     "ag-ui": {"threadId": s, "runId": "r", "messages": [{"id": "m"+s, "role": "user", "content": T}], "forwardedProps": {"user_id": user}},
     "responses": {"input": T, "stream": True, "conversation": s, "user_id": user},
     "chat": {"messages": [{"role": "user", "content": T}], "stream": True, "session_id": s, "user_id": user},
    }[face]
PATH = {"process": "/process", "a2a": "/a2a", "ag-ui": "/ag-ui", "responses": "/compatible-mode/v1/responses", "chat": "/compatible-mode/v1/chat/completions"}
stands = subprocess.Popen([bench, "--stand-ins"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
env = {}
for line in stands.stdout:
    if line.startswith("stand-ins running"): break
    if "=" in line: k, v = line.strip().split("=", 1); env[k] = v
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def turn(port, face, user):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{PATH[face]}", json.dumps(body(face, user, uuid.uuid4().hex)).encode(), {"content-type": "application/json"})
    data = urllib.request.urlopen(req, timeout=60).read().decode()
    assert "getutctime" in data or "The tool said" in data, data[-300:]
def total(outfile):
    for line in open(outfile):
        if line.startswith("summary:") or line.startswith("totals:"): return int(line.split()[1])
def measure(function, face, n):
    port = free_port(); out = os.path.join(tmp, f"callgrind-{face}-{n}-{os.getpid()}-{time.monotonic_ns()}.out")
    e = dict(os.environ, **env, **extra, FC_SERVER_PORT=str(port), RUST_LOG="warn")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", function], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try: urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2); break
        except Exception: time.sleep(0.2)
    for i in range(n): turn(port, face, "u1")
    p.send_signal(signal.SIGTERM); p.wait()
    return total(out)
tmp = tempfile.mkdtemp(prefix="instructions-")
res = {}
for face in faces:
    for label, function in functions:
        lo = int(os.environ.get("CG_LO", "10")); a, b = measure(function, face, lo), measure(function, face, lo + 50)
        res[(face, label)] = (b - a) / 50
        name = face if len(functions) == 1 else f"{face} {label}"
        print(f"{name:20s} {res[(face, label)]/1e6:.3f} M instructions/turn", flush=True)
stands.kill()
