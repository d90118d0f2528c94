#!/usr/bin/env python3
"""redis_proxy.py -- a fault-injecting proxy between oneshot and a real
redis-server, on unix sockets (loopback only, nothing else).

    redis_proxy.py LISTEN_SOCK UPSTREAM_SOCK CONTROL_DIR

Faults are armed by files the test writes in CONTROL_DIR, checked before
every chunk is forwarded:

  drop      holds a byte pattern: the first client chunk containing it is
            forwarded to Redis (which runs it), then that connection is
            cut before any reply comes back -- a reply lost on the wire.
            The file is removed and 'dropped' written (with the pattern),
            so a test can assert the fault really happened.
  cut       every open connection is closed at once (file removed,
            'cut-done' written).
  freeze    while it exists nothing is forwarded either way and new
            connections wait: a server that stops answering without
            closing anything (a frozen host, a black-holed network).

The proxy exits when its parent test's EXIT trap kills it.
"""
import os
import select
import socket
import sys
import threading
import time

LISTEN, UPSTREAM, CTL = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
conns = set()


def ctl(name):
    return os.path.join(CTL, name)


def frozen():
    return os.path.exists(ctl("freeze"))


def take_drop_pattern():
    with lock:
        try:
            with open(ctl("drop"), "rb") as f:
                return f.read().rstrip(b"\n")
        except FileNotFoundError:
            return None


def mark(name, data=b""):
    with open(ctl(name), "wb") as f:
        f.write(data)


def check_cut():
    with lock:
        if not os.path.exists(ctl("cut")):
            return False
        os.unlink(ctl("cut"))
        for pair in list(conns):
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        mark("cut-done")
        return True


def pump(client):
    while frozen():
        time.sleep(0.01)
    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        up.connect(UPSTREAM)
    except OSError:
        client.close()
        return
    pair = (client, up)
    with lock:
        conns.add(pair)
    try:
        while True:
            if check_cut():
                return
            if frozen():
                time.sleep(0.01)
                continue
            r, _, _ = select.select([client, up], [], [], 0.05)
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                if s is client:
                    pat = take_drop_pattern()
                    if pat and pat in data:
                        with lock:
                            if os.path.exists(ctl("drop")):
                                os.unlink(ctl("drop"))
                        up.sendall(data)
                        mark("dropped", pat)
                        # Let Redis run it, then cut before the reply.
                        time.sleep(0.05)
                        return
                    up.sendall(data)
                else:
                    client.sendall(data)
    except OSError:
        return
    finally:
        with lock:
            conns.discard(pair)
        for s in pair:
            try:
                s.close()
            except OSError:
                pass


def main():
    try:
        os.unlink(LISTEN)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(LISTEN)
    srv.listen(64)
    mark("ready")
    while True:
        c, _ = srv.accept()
        threading.Thread(target=pump, args=(c,), daemon=True).start()


main()
