"""Reference server: the real aiohttp-session, for live interop tests.

Run with the venv from scripts/pyenv.sh, e.g.

    PY=$(scripts/pyenv.sh | tail -n1)
    $PY tests/interop/app.py --storage fernet --port 0 --key-hex 000102...1f

It listens on 127.0.0.1 only and prints ``listening on http://127.0.0.1:PORT``
once ready (``--port 0`` picks a free port). SIGINT/SIGTERM stop it cleanly.

Routes (all answer JSON):
  GET  /get            the session dict (read only: no Set-Cookie)
  POST /set            merge the JSON object body into the session
  POST /clear          session.invalidate()
  GET  /new            new_session(); session["marker"] = "new"; the dict
  GET  /meta           {"new","created","identity","empty","max_age","session"}
  POST /max_age?n=N    session.max_age = N (int, or "none" for None); changed(); meta
  POST /touch          session.changed(); meta
  POST /del?key=K      del session[K] if present; the dict
  GET  /bare           "ok", without touching the session
  GET  /incr           n = session.get("n", 0) + 1; {"n": n}
  POST /identity?id=X  session.set_new_identity(X); session["named"] = True; meta
                       (409 unless the session is new)
  POST /clear_set      session.invalidate(), then merge the JSON object body
                       into the same session; meta (used to show that
                       invalidate() keeps the identity)

With ``--stop-on-stdin-eof`` the server also stops when its stdin reaches
end of file: a test harness that keeps the write end of a pipe open never
leaves a server behind, even when the harness itself is killed.

Nothing here catches the library's own errors: a cookie that makes
aiohttp-session raise gives the HTTP 500 the real library gives.
"""

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading

from aiohttp import web
import aiohttp_session
from aiohttp_session import get_session, new_session


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--storage",
        required=True,
        choices=["simple", "fernet", "nacl", "redis", "memcached"],
    )
    p.add_argument("--port", type=int, required=True, help="0 = any free port")
    p.add_argument("--key-hex", help="32-byte key as 64 hex chars (fernet, nacl)")
    p.add_argument(
        "--redis-url",
        default=os.environ.get("HTTP_SESSION_REDIS_URL"),
        help="default: $HTTP_SESSION_REDIS_URL",
    )
    p.add_argument(
        "--redis-cluster",
        metavar="URL,URL,...",
        help="redis: a Redis Cluster (redis.asyncio.RedisCluster) instead of --redis-url",
    )
    p.add_argument(
        "--redis-sentinel",
        metavar="MASTER@URL,URL,...",
        help="redis: the master the Sentinels name (redis.asyncio.Sentinel.master_for)",
    )
    p.add_argument(
        "--memcached",
        default=os.environ.get("HTTP_SESSION_MEMCACHED"),
        metavar="HOST:PORT[,HOST:PORT...]",
        help="default: $HTTP_SESSION_MEMCACHED; several: a ketama ring (KetamaRing)",
    )
    p.add_argument("--max-age", type=int, default=None)
    p.add_argument("--cookie-name", default="AIOHTTP_SESSION")
    p.add_argument("--samesite", choices=["Lax", "Strict", "None"], default=None)
    p.add_argument("--secure", action="store_true", default=None)
    p.add_argument("--domain", default=None)
    p.add_argument("--path", default="/")
    p.add_argument("--no-httponly", dest="httponly", action="store_false")
    p.add_argument("--access-log", action="store_true", help="log requests to stderr")
    p.add_argument(
        "--stop-on-stdin-eof",
        action="store_true",
        help="also stop when stdin is closed (the parent process exited)",
    )
    args = p.parse_args(argv)

    if args.storage in ("fernet", "nacl"):
        if not args.key_hex:
            p.error(f"--key-hex is required for --storage {args.storage}")
        try:
            key = bytes.fromhex(args.key_hex)
        except ValueError:
            p.error("--key-hex must be hex")
        if len(key) != 32:
            p.error("--key-hex must be 64 hex chars (32 bytes)")
        args.key = key
    if args.storage == "redis" and not (args.redis_url or args.redis_cluster or args.redis_sentinel):
        p.error("--redis-url (or HTTP_SESSION_REDIS_URL) is required for redis")
    if args.storage == "memcached" and not args.memcached:
        p.error("--memcached (or HTTP_SESSION_MEMCACHED) is required for memcached")
    return args


async def make_storage(args):
    """Build the storage; returns (storage, async cleanup function)."""
    common = dict(
        cookie_name=args.cookie_name,
        domain=args.domain,
        max_age=args.max_age,
        path=args.path,
        secure=args.secure,
        httponly=args.httponly,
        samesite=args.samesite,
    )

    async def nothing():
        pass

    if args.storage == "simple":
        return aiohttp_session.SimpleCookieStorage(**common), nothing
    if args.storage == "fernet":
        from aiohttp_session.cookie_storage import EncryptedCookieStorage

        # bytes key: aiohttp-session urlsafe-base64-encodes it for Fernet, so
        # the 32 raw bytes are the Fernet key (signing half, then AES half).
        return EncryptedCookieStorage(args.key, **common), nothing
    if args.storage == "nacl":
        from aiohttp_session.nacl_storage import NaClCookieStorage

        return NaClCookieStorage(args.key, **common), nothing
    if args.storage == "redis":
        from redis import asyncio as aioredis
        from aiohttp_session.redis_storage import RedisStorage

        if args.redis_cluster:
            client = aioredis.RedisCluster(
                startup_nodes=[
                    aioredis.cluster.ClusterNode(*host_port(url))
                    for url in args.redis_cluster.split(",")
                ]
            )
            await client.ping()

            async def close():
                await client.aclose()

            return ClusterRedisStorage(client, **common), close
        if args.redis_sentinel:
            master, _, urls = args.redis_sentinel.partition("@")
            sentinel = aioredis.Sentinel([host_port(url) for url in urls.split(",")])
            client = sentinel.master_for(master)
        else:
            client = aioredis.from_url(args.redis_url)
        await client.ping()  # fail at startup, not on the first request

        async def close():
            await client.aclose()

        return RedisStorage(client, **common), close
    if args.storage == "memcached":
        import aiomcache
        from aiohttp_session.memcached_storage import MemcachedStorage

        if "," in args.memcached:
            client = KetamaRing(args.memcached.split(","))
        else:
            host, _, port = args.memcached.rpartition(":")
            client = aiomcache.Client(host, int(port))
        await client.version()  # fail at startup, not on the first request

        async def close():
            await client.close()

        return MemcachedStorage(client, **common), close
    raise AssertionError(args.storage)


def host_port(url):
    """("host", port) of redis://host:port[/]."""
    host, _, port = url.removeprefix("redis://").rstrip("/").rpartition(":")
    return host, int(port)


def ClusterRedisStorage(cluster, **common):
    """aiohttp-session's RedisStorage over a redis.asyncio.RedisCluster.

    RedisStorage insists on a redis.asyncio.Redis (an isinstance check),
    which a RedisCluster is not; it only calls get(key) and
    set(key, value, ex=max_age), which a RedisCluster routes to the master
    of the key's slot. So the storage is built on a placeholder client and
    given the cluster afterwards.
    """
    from redis import asyncio as aioredis
    from aiohttp_session.redis_storage import RedisStorage

    storage = RedisStorage(aioredis.Redis(), **common)
    storage._redis = cluster
    return storage


class KetamaRing:
    """The part of aiomcache.Client that MemcachedStorage uses (get, set),
    over a ring of memcached servers: each key goes to the server uhashring
    picks with hash_fn="ketama", which is where http-session's
    MemcachedStore::ring (KetamaFlavor::KetamaWeighted, the default) and
    pylibmc with behaviors={"ketama_weighted": True} put it. Give all of
    them the same servers in the same order. Nodes are named as libmemcached
    names them: "host" for port 11211, "host:port" otherwise.
    """

    def __init__(self, addrs):
        import aiomcache
        from uhashring import HashRing

        self.clients = {}
        for addr in addrs:
            host, _, port = addr.rpartition(":")
            name = host if int(port) == 11211 else f"{host}:{port}"
            self.clients[name] = aiomcache.Client(host, int(port))
        self.ring = HashRing(nodes=list(self.clients), hash_fn="ketama")

    def _client(self, key):
        return self.clients[self.ring.get_node(key.decode("utf-8"))]

    async def get(self, key, default=None):
        return await self._client(key).get(key, default)

    async def set(self, key, value, exptime=0):
        return await self._client(key).set(key, value, exptime=exptime)

    async def version(self):
        for client in self.clients.values():
            await client.version()

    async def close(self):
        for client in self.clients.values():
            await client.close()


def meta(session):
    return {
        "new": session.new,
        "created": session.created,
        "identity": session.identity,
        "empty": session.empty,
        "max_age": session.max_age,
        "session": dict(session),
    }


routes = web.RouteTableDef()


def required_query(request, name):
    """A query parameter the route needs (400 when it is missing)."""
    value = request.query.get(name)
    if value is None:
        raise web.HTTPBadRequest(text=f"{name} is required")
    return value


async def json_object(request):
    """The request's JSON body, which must be an object (400 otherwise)."""
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


@routes.get("/get")
async def get_(request):
    session = await get_session(request)
    return web.json_response(dict(session))


@routes.post("/set")
async def set_(request):
    body = await json_object(request)
    session = await get_session(request)
    # As our example servers: wait between loading and saving, so tests can
    # make requests of one session overlap.
    delay_ms = request.query.get("delay_ms")
    if delay_ms is not None:
        await asyncio.sleep(min(int(delay_ms), 10_000) / 1000)
    for k, v in body.items():
        session[k] = v
    return web.json_response(dict(session))


@routes.post("/clear")
async def clear(request):
    session = await get_session(request)
    session.invalidate()
    return web.json_response(dict(session))


@routes.get("/new")
async def new(request):
    session = await new_session(request)
    session["marker"] = "new"
    return web.json_response(dict(session))


@routes.get("/meta")
async def meta_(request):
    session = await get_session(request)
    return web.json_response(meta(session))


@routes.post("/max_age")
async def max_age(request):
    raw = request.query.get("n", "")
    if raw.lower() == "none":
        value = None
    else:
        try:
            value = int(raw)
        except ValueError:
            raise web.HTTPBadRequest(text="n must be an int or 'none'")
    session = await get_session(request)
    session.max_age = value
    session.changed()
    return web.json_response(meta(session))


@routes.post("/touch")
async def touch(request):
    session = await get_session(request)
    session.changed()
    return web.json_response(meta(session))


@routes.post("/del")
async def del_(request):
    key = required_query(request, "key")
    session = await get_session(request)
    if key in session:
        del session[key]
    return web.json_response(dict(session))


@routes.post("/identity")
async def identity(request):
    new_id = required_query(request, "id")
    session = await get_session(request)
    try:
        session.set_new_identity(new_id)
    except RuntimeError:
        return web.json_response({"error": "session is not new"}, status=409)
    session["named"] = True
    return web.json_response(meta(session))


@routes.post("/clear_set")
async def clear_set(request):
    body = await json_object(request)
    session = await get_session(request)
    session.invalidate()
    for k, v in body.items():
        session[k] = v
    return web.json_response(meta(session))


@routes.get("/bare")
async def bare(request):
    return web.json_response("ok")


@routes.get("/incr")
async def incr(request):
    session = await get_session(request)
    n = session.get("n", 0) + 1
    session["n"] = n
    return web.json_response({"n": n})


def _wait_for_eof(loop, stop):
    """Sets ``stop`` once stdin is at end of file (the parent went away)."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        loop.call_soon_threadsafe(stop.set)


async def serve(args):
    storage, close_storage = await make_storage(args)
    app = web.Application()
    aiohttp_session.setup(app, storage)
    app.add_routes(routes)

    access_log = logging.getLogger("aiohttp.access") if args.access_log else None
    runner = web.AppRunner(app, access_log=access_log)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.stop_on_stdin_eof:
        threading.Thread(
            target=_wait_for_eof, args=(loop, stop), daemon=True
        ).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await close_storage()


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.access_log else logging.WARNING,
        stream=sys.stderr,
        format="%(name)s %(levelname)s %(message)s",
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
