"""Writes or reads keys on a ring of memcached servers through a real
Python ketama client, for tests/interop/ring.rs (placement shared with our
MemcachedBackend::ring).

Reads one JSON object on stdin:

    {"op": "write" | "read",
     "client": "pylibmc" | "uhashring",
     "behaviors": {...},          # pylibmc only, e.g. {"ketama_weighted": true}
     "servers": ["127.0.0.1:PORT", ...],
     "items": {"key": "value", ...}}   # read: the values are ignored

and prints {"found": {"key": "value" or null, ...}} (write: what it wrote).

- pylibmc (libmemcached) is given the server strings as they are, in order.
- uhashring (pure Python) gets nodes named as libmemcached names them
  ("host" for port 11211, "host:port" otherwise) with hash_fn="ketama",
  picks the node, and the script speaks memcached's text protocol to it.

Values are stored as bytes with flags 0, as aiohttp-session (aiomcache)
stores them.
"""

import json
import socket
import sys


def node_name(addr):
    host, _, port = addr.rpartition(":")
    return host if int(port) == 11211 else f"{host}:{port}"


class Text:
    """One text-protocol connection per server."""

    def __init__(self, addr):
        host, _, port = addr.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.file = self.sock.makefile("rb")

    def set(self, key, value):
        self.sock.sendall(b"set %s 0 600 %d\r\n%s\r\n" % (key, len(value), value))
        line = self.file.readline()
        if line != b"STORED\r\n":
            raise RuntimeError(f"set {key!r}: {line!r}")

    def get(self, key):
        self.sock.sendall(b"get %s\r\n" % key)
        line = self.file.readline()
        if line == b"END\r\n":
            return None
        _, _, _, length = line.split()
        value = self.file.read(int(length) + 2)[:-2]
        if self.file.readline() != b"END\r\n":
            raise RuntimeError("no END after the value")
        return value


def main():
    req = json.load(sys.stdin)
    servers = req["servers"]
    items = req["items"]
    found = {}
    if req["client"] == "pylibmc":
        import pylibmc

        mc = pylibmc.Client(servers, binary=False, behaviors=req["behaviors"])
        for key, value in items.items():
            if req["op"] == "write":
                if not mc.set(key, value.encode(), time=600):
                    raise RuntimeError(f"pylibmc set {key} failed")
                found[key] = value
            else:
                got = mc.get(key)
                found[key] = None if got is None else got.decode()
    elif req["client"] == "uhashring":
        from uhashring import HashRing

        names = {node_name(addr): addr for addr in servers}
        ring = HashRing(nodes=list(names), hash_fn="ketama")
        conns = {name: Text(addr) for name, addr in names.items()}
        for key, value in items.items():
            conn = conns[ring.get_node(key)]
            if req["op"] == "write":
                conn.set(key.encode(), value.encode())
                found[key] = value
            else:
                got = conn.get(key.encode())
                found[key] = None if got is None else got.decode()
    else:
        raise SystemExit(f"unknown client {req['client']!r}")
    json.dump({"found": found}, sys.stdout)


if __name__ == "__main__":
    main()
