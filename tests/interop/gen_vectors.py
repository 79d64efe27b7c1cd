"""Generate tests/interop/vectors.json: known-answer vectors from the REAL
aiohttp-session (cookie storages: simple, fernet, nacl).

    PY=$(scripts/pyenv.sh | tail -n1)
    $PY tests/interop/gen_vectors.py            # writes tests/interop/vectors.json
    $PY tests/interop/gen_vectors.py --check    # exit 1 if the file is stale

Everything random is pinned, so the output is byte-identical on every run:
  * time.time() is patched to the vector's time while the library saves or
    loads (Session.created, cookie `expires`, the Fernet timestamp and ttl);
  * the Fernet IV goes through Fernet._encrypt_from_parts, the NaCl nonce
    through SecretBox.encrypt(nonce=...) (the storage's nacl.utils.random is
    patched), both derived from the vector name.

Positive vectors are produced by the storage's own save_session() on a real
aiohttp Response that is then prepared, so `set_cookie` is the Set-Cookie
header exactly as aiohttp sends it, and `cookie` is the value in it (after
http.cookies quoting). Hand-made tokens (tampered, expired, ...) are quoted
the same way through Response.set_cookie.

Every vector's `expect` comes from loading `cookie` back through the real
storage's load_session() at time `now` (Cookie header `<name>=<cookie>`):
  {"new": bool, "session": {...}, "created": int}   what Python loads, or
  {"fresh": true}     the cookie is rejected: a new, empty session.
Where Python raises instead (HTTP 500 in a server), expect is {"fresh": true}
and `python_error` names the exception: the safe behaviour for the Rust port.

Fields: name, storage, key_hex, now, max_age, options (storage cookie params
other than defaults), cookie, token (unquoted), plaintext (the exact bytes
encrypted, as a string; null if not UTF-8, then plaintext_hex), iv_hex and ts
(fernet), nonce_hex (nacl), set_cookie (when made by save_session), expect,
python_error, note.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from unittest import mock

import nacl.secret
import nacl.utils
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography.fernet import Fernet
from nacl.encoding import Base64Encoder

from aiohttp_session import Session, SimpleCookieStorage
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.nacl_storage import NaClCookieStorage

KEY = bytes(range(32))
WRONG_KEY = bytes(range(100, 132))
NOW = 1700000000  # 2023-11-14T22:13:20Z
NAME = "AIOHTTP_SESSION"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")

# Session contents shared by every storage.
PAYLOADS = {
    "small": {"user": "alice", "n": 1},
    "unicode": {"text": "é 中文 😀"},
    "specials": {"s": 'a;b,c"d\\e', "k;,\"\\": "key with specials"},
    "nested": {"obj": {"a": [1, 2, {"b": None}], "c": True, "d": False}, "list": [[], {}]},
    "null": {"k": None},
    "floats": {"a": 1.5, "b": 1e-07, "c": 1e100, "d": -0.0},
    "bigint": {"big": 9223372036854775807, "neg": -9223372036854775808},
    "control-chars": {"c": "tab\tnl\ncr\rnul\x00del\x7f"},
}


# --- pinning helpers --------------------------------------------------------


@contextmanager
def pinned_time(t):
    """Make time.time() return t (the library reads only time.time())."""
    with mock.patch("time.time", return_value=float(t)):
        yield


def derive(label, name, n, counter=0):
    """Deterministic bytes for a vector (IVs, nonces)."""
    return hashlib.sha256(f"{label}:{name}:{counter}".encode()).digest()[:n]


def fernet(key=KEY):
    return Fernet(base64.urlsafe_b64encode(key))


def fernet_token(plaintext, ts, iv, key=KEY):
    return fernet(key)._encrypt_from_parts(plaintext, ts, iv).decode()


def nacl_token(plaintext, nonce, key=KEY):
    box = nacl.secret.SecretBox(key)
    return box.encrypt(plaintext, nonce, encoder=Base64Encoder).decode()


def fernet_resign(raw, key=KEY):
    """Recompute the Fernet HMAC over raw[:-32] (to isolate one other check)."""
    body = raw[:-32]
    return body + hmac.new(key[:16], body, hashlib.sha256).digest()


def flip(raw, i):
    b = bytearray(raw)
    b[i] ^= 0x01
    return bytes(b)


def payload_json(session, created):
    """The exact plaintext aiohttp-session encodes for a non-empty session."""
    return json.dumps({"created": created, "session": session})


# --- the real library -------------------------------------------------------


def make_storage(kind, key, max_age, options):
    kw = dict(max_age=max_age, **options)
    if kind == "simple":
        return SimpleCookieStorage(**kw)
    if kind == "fernet":
        return EncryptedCookieStorage(key, **kw)  # bytes key: base64'd by the lib
    if kind == "nacl":
        return NaClCookieStorage(key, **kw)
    raise AssertionError(kind)


def quote(token, options):
    """Cookie value as aiohttp puts it in Set-Cookie (http.cookies quoting)."""
    resp = web.Response()
    name = options.get("cookie_name", NAME)
    resp.set_cookie(name, token)
    return resp.cookies[name].coded_value


async def save(kind, session_dict, *, t, max_age, name, options=None, session_max_age="same"):
    """Run the storage's save_session at time t with a pinned IV/nonce.

    Returns (set_cookie_lines, cookie, token, iv_or_nonce)."""
    options = options or {}
    storage = make_storage(kind, KEY, max_age, options)
    iv = derive("iv", name, 16)
    nonce = derive("nonce", name, 24)
    if kind == "fernet":
        f = storage._fernet
        # Same as Fernet.encrypt -> encrypt_at_time, with the IV pinned.
        f.encrypt = lambda data: f._encrypt_from_parts(data, int(time.time()), iv)
    with pinned_time(t), mock.patch("nacl.utils.random", return_value=nonce):
        session = Session(None, data=None, new=True, max_age=max_age)
        for k, v in session_dict.items():
            session[k] = v  # sets created = int(time.time()) = t
        if session_max_age != "same":
            session.max_age = session_max_age
        session.changed()
        resp = web.Response(text="")
        await storage.save_session(make_mocked_request("GET", "/"), resp, session)
        await resp.prepare(make_mocked_request("GET", "/"))
    lines = resp.headers.getall("Set-Cookie")
    assert len(lines) == 1, lines
    morsel = resp.cookies[options.get("cookie_name", NAME)]
    extra = {"fernet": iv, "nacl": nonce}.get(kind)
    return lines[0], morsel.coded_value, morsel.value, extra


async def load(kind, cookie, *, now, max_age, key=KEY, options=None):
    """Load `cookie` through the real storage at time `now`."""
    options = options or {}
    storage = make_storage(kind, key, max_age, options)
    name = options.get("cookie_name", NAME)
    req = make_mocked_request("GET", "/", headers={"Cookie": f"{name}={cookie}"})
    with pinned_time(now):
        try:
            s = await storage.load_session(req)
        except Exception as e:  # the library's own failure: HTTP 500 in a server
            return {"error": type(e).__name__}
    return {"new": s.new, "session": dict(s), "created": s.created, "empty": s.empty}


# --- vector assembly --------------------------------------------------------

VECTORS = []


async def add(name, kind, *, cookie, token, now, max_age, plaintext, negative=False,
              options=None, note=None, set_cookie=None, iv=None, nonce=None, ts=None,
              load_key=KEY):
    options = options or {}
    got = await load(kind, cookie, now=now, max_age=max_age, options=options, key=load_key)
    v = {"name": name, "storage": kind, "key_hex": KEY.hex(), "now": now, "max_age": max_age}
    if options:
        v["options"] = options
    v["cookie"] = cookie
    v["token"] = token
    if isinstance(plaintext, bytes):
        try:
            plaintext = plaintext.decode("utf-8")
        except UnicodeDecodeError:
            v["plaintext_hex"] = plaintext.hex()
            plaintext = None
    v["plaintext"] = plaintext
    if iv is not None:
        v["iv_hex"] = iv.hex()
    if ts is not None:
        v["ts"] = ts
    if nonce is not None:
        v["nonce_hex"] = nonce.hex()
    if set_cookie is not None:
        v["set_cookie"] = set_cookie
    if "error" in got:
        assert negative, f"{name}: Python raised {got['error']} on a positive vector"
        v["expect"] = {"fresh": True}
        v["python_error"] = got["error"]
    elif negative:
        assert got["new"] and got["empty"], f"{name}: Python accepted it: {got}"
        v["expect"] = {"fresh": True}
    else:
        v["expect"] = {"new": got["new"], "session": got["session"], "created": got["created"]}
    if note:
        v["note"] = note
    assert all(x["name"] != name for x in VECTORS), name
    VECTORS.append(v)
    return v


async def saved(name, kind, session_dict, *, t=NOW, now=None, max_age=None, options=None,
                session_max_age="same", note=None, negative=False):
    """A vector made by the storage's own save_session."""
    line, cookie, token, extra = await save(
        kind, session_dict, t=t, max_age=max_age, name=name, options=options,
        session_max_age=session_max_age)
    plaintext = payload_json(session_dict, t) if session_dict else "{}"
    if kind == "simple":
        assert token == plaintext
    if kind == "fernet" and token:
        raw = base64.urlsafe_b64decode(token)
        assert raw[1:9] == t.to_bytes(8, "big")
        assert fernet().decrypt(token.encode()).decode() == plaintext
    if kind == "nacl" and token:
        assert nacl.secret.SecretBox(KEY).decrypt(token.encode(), encoder=Base64Encoder).decode() == plaintext
    return await add(
        name, kind, cookie=cookie, token=token, now=NOW if now is None else now,
        max_age=max_age, plaintext=plaintext if token else "", options=options,
        note=note, set_cookie=line, negative=negative,
        iv=extra if kind == "fernet" and token else None,
        ts=t if kind == "fernet" and token else None,
        nonce=extra if kind == "nacl" and token else None)


async def crafted_fernet(name, plaintext, *, ts=NOW, now=NOW, max_age=None, mutate=None,
                         key=KEY, negative=True, note=None, want=None):
    """A hand-made Fernet token; mutate(token) -> token alters it."""
    for counter in range(1000):
        iv = derive("iv", name, 16, counter)
        token = fernet_token(plaintext, ts, iv, key)
        if want is None or want(token):
            break
    else:
        raise AssertionError(f"{name}: no IV gives the wanted token shape")
    if mutate:
        token = mutate(token)
    return await add(name, "fernet", cookie=quote(token, {}), token=token, now=now,
                     max_age=max_age, plaintext=plaintext, negative=negative,
                     note=note, iv=iv, ts=ts)


async def crafted_nacl(name, plaintext, *, now=NOW, max_age=None, mutate=None, key=KEY,
                       negative=True, note=None, want=None, cookie=None):
    for counter in range(1000):
        nonce = derive("nonce", name, 24, counter)
        token = nacl_token(plaintext, nonce, key)
        if want is None or want(token):
            break
    else:
        raise AssertionError(f"{name}: no nonce gives the wanted token shape")
    if mutate:
        token = mutate(token)
    return await add(name, "nacl", cookie=cookie(token) if cookie else quote(token, {}),
                     token=token, now=now, max_age=max_age, plaintext=plaintext,
                     negative=negative, note=note, nonce=nonce)


def fernet_raw_mutation(fn):
    """Token -> decode -> fn(raw) -> urlsafe re-encode (with padding)."""
    return lambda tok: base64.urlsafe_b64encode(fn(base64.urlsafe_b64decode(tok))).decode()


def nacl_raw_mutation(fn):
    return lambda tok: base64.b64encode(fn(base64.b64decode(tok))).decode()


async def build():
    small = PAYLOADS["small"]
    small_pt = payload_json(small, NOW).encode()

    # 1. Every payload through every storage's save_session, then loaded back.
    for kind in ("simple", "fernet", "nacl"):
        for pname, pdict in PAYLOADS.items():
            await saved(f"{kind}-{pname}", kind, pdict)
        await saved(f"{kind}-small-max-age", kind, small, t=NOW - 100, max_age=3600,
                    note="saved 100 s before now, storage max_age 3600")

    # 2. Empty sessions.
    await saved("simple-empty", "simple", {},
                note="SimpleCookieStorage writes {} (never a deletion cookie); {} loads as new")
    for kind in ("fernet", "nacl"):
        await saved(f"{kind}-empty-deletes-cookie", kind, {}, negative=True,
                    options={"domain": "example.test", "secure": True, "samesite": "Strict"},
                    note="empty session -> deletion cookie, without HttpOnly/Secure/SameSite; "
                         "loading the empty value gives a fresh session")
    await crafted_fernet("fernet-empty-payload", b"{}", negative=False,
                         note="authentic token of {} (save never makes one): loads as new")
    await crafted_nacl("nacl-empty-payload", b"{}", negative=False,
                       note="authentic box of {} (save never makes one): loads as new")

    # 3. Expiry through `created` (all storages; the only expiry NaCl/simple have).
    for kind in ("simple", "fernet", "nacl"):
        await saved(f"{kind}-created-age-equals-max-age", kind, small, t=NOW - 3600,
                    max_age=3600, note="age == max_age is kept (check is age > max_age)")
    for kind in ("simple", "nacl"):
        await saved(f"{kind}-created-expired", kind, small, t=NOW - 3601, max_age=3600,
                    note="age > max_age: Python drops the data but keeps new=False and "
                         "the old created")
        await saved(f"{kind}-created-future", kind, small, t=NOW + 3600, max_age=3600,
                    note="created in the future: negative age, Python keeps it")
    await crafted_fernet(
        "fernet-created-expired", payload_json(small, NOW - 7200).encode(), max_age=3600,
        negative=False,
        note="fresh token ts, but JSON created 7200 s old: Session drops the data, new=False")
    await add("simple-created-float", "simple",
              cookie=quote('{"created": 1700000000.5, "session": {"a": 1}}', {}),
              token='{"created": 1700000000.5, "session": {"a": 1}}', now=NOW, max_age=3600,
              plaintext='{"created": 1700000000.5, "session": {"a": 1}}',
              note="a float created is kept as is")
    await add("simple-created-missing", "simple", cookie=quote('{"session": {"a": 1}}', {}),
              token='{"session": {"a": 1}}', now=NOW, max_age=3600,
              plaintext='{"session": {"a": 1}}',
              note="missing created counts as age=now: dropped when max_age is set; "
                   "created becomes now")
    await add("simple-created-missing-no-max-age", "simple",
              cookie=quote('{"session": {"a": 1}}', {}), token='{"session": {"a": 1}}',
              now=NOW, max_age=None, plaintext='{"session": {"a": 1}}',
              note="missing created without max_age: kept; created becomes now")

    # 4. Fernet timestamp (ttl) checks: only when max_age is set.
    await crafted_fernet("fernet-ts-expired", small_pt, ts=NOW - 3601, max_age=3600,
                         note="ts + ttl < now -> InvalidToken")
    await crafted_fernet("fernet-ts-at-ttl", small_pt, ts=NOW - 3600, max_age=3600,
                         negative=False, note="ts + ttl == now is accepted")
    await crafted_fernet("fernet-ts-future", small_pt, ts=NOW + 61, max_age=3600,
                         note="now + 60 < ts -> InvalidToken (clock skew)")
    await crafted_fernet("fernet-ts-future-60", small_pt, ts=NOW + 60, max_age=3600,
                         negative=False, note="ts == now + 60 is accepted")
    await crafted_fernet("fernet-ts-old-no-max-age", small_pt, ts=NOW - 10**6,
                         negative=False, note="no max_age: no ttl check at all")
    await crafted_fernet("fernet-ts-future-no-max-age", small_pt, ts=NOW + 10**6,
                         negative=False, note="no max_age: future ts accepted too")

    # 5. Fernet tampering and encoding.
    await crafted_fernet("fernet-tampered-ciphertext", small_pt,
                         mutate=fernet_raw_mutation(lambda r: flip(r, 30)))
    await crafted_fernet("fernet-tampered-hmac", small_pt,
                         mutate=fernet_raw_mutation(lambda r: flip(r, len(r) - 1)))
    await crafted_fernet("fernet-tampered-iv", small_pt,
                         mutate=fernet_raw_mutation(lambda r: flip(r, 9)))
    await crafted_fernet("fernet-tampered-timestamp", small_pt,
                         mutate=fernet_raw_mutation(lambda r: flip(r, 8)))
    await crafted_fernet("fernet-wrong-version", small_pt,
                         mutate=fernet_raw_mutation(lambda r: fernet_resign(b"\x81" + r[1:])),
                         note="version byte 0x81 with a valid HMAC")
    await crafted_fernet("fernet-wrong-key", small_pt, key=WRONG_KEY,
                         note=f"sealed with key {WRONG_KEY.hex()}")
    await crafted_fernet("fernet-unpadded", small_pt, want=lambda t: t.endswith("="),
                         mutate=lambda t: t.rstrip("="), note="'=' padding stripped")
    await crafted_fernet("fernet-standard-alphabet", small_pt,
                         want=lambda t: "-" in t and "_" in t,
                         mutate=lambda t: t.replace("-", "+").replace("_", "/"),
                         negative=False,
                         note="'-_' written as '+/': Python accepts it (lenient decode)")
    await crafted_fernet("fernet-truncated", small_pt, mutate=lambda t: t[:-4],
                         note="last 4 base64 chars dropped")
    await crafted_fernet("fernet-truncated-short", small_pt,
                         mutate=fernet_raw_mutation(lambda r: r[:8]),
                         note="8 bytes: shorter than version + timestamp")
    await crafted_fernet("fernet-garbage", small_pt, mutate=lambda t: "not-a-token")
    await crafted_fernet("fernet-bad-json", b"not json",
                         note="authentic token, invalid JSON inside")
    await crafted_fernet("fernet-bad-utf8", b"\xff\xfe", note="authentic token, not UTF-8")
    await crafted_fernet("fernet-json-array", b"[1, 2]", note="authentic token, a JSON list")
    # A token without padding is sent bare (no quotes) in Set-Cookie.
    for m in range(64):
        d = {"pad": "x" * m}
        if (len(payload_json(d, NOW)) // 16 + 1) % 3 == 0:
            break
    v = await saved("fernet-bare-token", "fernet", d,
                    note="raw length 57+16k with k % 3 == 0: no '=' padding, so no quotes")
    assert not v["cookie"].startswith('"') and "=" not in v["token"]

    # 6. NaCl tampering and encoding.
    await crafted_nacl("nacl-tampered-nonce", small_pt,
                       mutate=nacl_raw_mutation(lambda r: flip(r, 0)))
    await crafted_nacl("nacl-tampered-mac", small_pt,
                       mutate=nacl_raw_mutation(lambda r: flip(r, 24)))
    await crafted_nacl("nacl-tampered-ciphertext", small_pt,
                       mutate=nacl_raw_mutation(lambda r: flip(r, len(r) - 1)))
    await crafted_nacl("nacl-wrong-key", small_pt, key=WRONG_KEY,
                       note=f"sealed with key {WRONG_KEY.hex()}")
    await crafted_nacl("nacl-urlsafe-alphabet", small_pt,
                       want=lambda t: "+" in t and "/" in t,
                       mutate=lambda t: t.replace("+", "-").replace("/", "_"),
                       note="'+/' written as '-_': rejected (b64decode drops '-_')")
    await crafted_nacl("nacl-unpadded", small_pt, want=lambda t: t.endswith("="),
                       mutate=lambda t: t.rstrip("="), note="'=' padding stripped")
    await crafted_nacl("nacl-truncated", small_pt, mutate=lambda t: t[:-4],
                       note="last 4 base64 chars dropped")
    await crafted_nacl("nacl-truncated-short", small_pt,
                       mutate=nacl_raw_mutation(lambda r: r[:20]),
                       note="20 bytes: shorter than the nonce")
    await crafted_nacl("nacl-garbage", small_pt, mutate=lambda t: "not a token!")
    await crafted_nacl("nacl-unquoted", small_pt, want=lambda t: "/" in t,
                       cookie=lambda t: t, negative=False,
                       note="token sent without the Set-Cookie quotes: accepted")
    await crafted_nacl("nacl-bad-json", b"not json",
                       note="authentic box, invalid JSON inside")

    # 7. Simple storage: odd cookie values.
    await add("simple-invalid-json", "simple", cookie="notjson", token="notjson", now=NOW,
              max_age=None, plaintext="notjson", negative=True)
    await add("simple-json-list", "simple", cookie=quote("[1, 2]", {}), token="[1, 2]",
              now=NOW, max_age=None, plaintext="[1, 2]", negative=True)
    await add("simple-json-null", "simple", cookie="null", token="null", now=NOW,
              max_age=None, plaintext="null", note="null loads as new=False, empty")
    raw = json.dumps({"created": NOW, "session": {"u": "é😀"}}, ensure_ascii=False)
    await add("simple-raw-utf8-quoted", "simple",
              cookie='"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"', token=raw,
              now=NOW, max_age=None, plaintext=raw,
              note="raw UTF-8 inside quotes (not what Python writes) is accepted")
    compact = '{"created":1700000000,"session":{"a":1,"b":[1,2]}}'
    await add("simple-compact-unquoted", "simple", cookie=compact, token=compact, now=NOW,
              max_age=None, plaintext=compact, note="compact JSON sent bare is accepted")

    # 8. Set-Cookie attribute rendering (simple storage, payload {"a": 1}).
    a1 = {"a": 1}
    await saved("hdr-max-age", "simple", a1, max_age=3600)
    await saved("hdr-all-attributes", "simple", a1, max_age=3600,
                options={"domain": "example.test", "path": "/app", "secure": True,
                         "samesite": "Strict"})
    await saved("hdr-samesite-lax", "simple", a1, options={"samesite": "Lax"})
    await saved("hdr-samesite-none-secure", "simple", a1,
                options={"samesite": "None", "secure": True})
    await saved("hdr-no-httponly", "simple", a1, options={"httponly": False})
    await saved("hdr-cookie-name", "simple", a1, options={"cookie_name": "my_sess"})
    await saved("hdr-session-max-age-override", "simple", a1, max_age=3600,
                session_max_age=60, note="per-session max_age 60 wins on save")
    await saved("hdr-session-max-age-none", "simple", a1, max_age=3600,
                session_max_age=None,
                note="per-session max_age None: storage Max-Age still sent, no expires")
    await saved("hdr-max-age-fernet", "fernet", a1, max_age=86400,
                options={"samesite": "Lax"})
    await saved("hdr-max-age-nacl", "nacl", a1, max_age=86400,
                options={"samesite": "Lax"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="fail if vectors.json is stale")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # silence "Cannot decrypt cookie value"

    asyncio.run(build())
    text = json.dumps(VECTORS, indent=2, ensure_ascii=False) + "\n"
    if args.check:
        with open(args.out, encoding="utf-8") as f:
            if f.read() != text:
                sys.exit(f"{args.out} is stale: re-run gen_vectors.py")
        print(f"{args.out}: up to date ({len(VECTORS)} vectors)")
        return
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {len(VECTORS)} vectors to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
