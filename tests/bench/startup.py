# exec → READY=1: starts the command given N times with NOTIFY_SOCKET set, prints the
# microseconds from just before the spawn to the READY=1 datagram, one line per run, and
# stops each process (TERM, by pid) before the next. Its pid is written to PIDFILE so the
# caller can stop it if this script dies.
#   python3 startup.py SOCKET PIDFILE N COMMAND...
import os, socket, subprocess, sys, time

path, pidfile, n, cmd = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
env = dict(os.environ, NOTIFY_SOCKET=path)
for _ in range(n):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(30)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    with open(pidfile, "w") as f:
        f.write(str(p.pid))
    try:
        while True:
            msg = s.recv(4096)
            if b"READY=1" in msg.split(b"\n"):
                break
        print(int((time.monotonic() - t0) * 1e6), flush=True)
    finally:
        p.terminate()
        p.wait(10)
        s.close()
