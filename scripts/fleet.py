#!/usr/bin/env python3
"""The fleet test (run by scripts/fleet, which makes the databases and migrates them).

HAProxy on loopback in front of two auth-servers and, separately, two rooms APIs, all on
PostgreSQL, health-checked on /readyz, with TRUSTED_PROXIES set for the proxy. Then, through the
proxy (and each replica directly where the point is that it is *that* replica):

1. a token from either auth replica is accepted by either rooms replica;
2. a secret rotation made through one replica's admin API, and a deactivation made by the CLI,
   take effect on the other replica's token endpoint at once — its next request, though its row
   cache held the application (checked on its metrics: the request before was a hit) — and on
   both rooms replicas within one revocation poll;
3. wrong guesses spread by the proxy over both auth replicas meet one shared limit, and the
   correct secret still gets through;
4. `keys rotate --now` under load: no 401 from any rooms replica while both auth replicas switch
   to the new key at their own refresh times;
5. under a steady mixed load (token, room create, room GET), `kill -9` of one auth and one rooms
   replica, then their restart: 5xx only inside the proxy's detection window (measured), no 401
   or 503 when the replicas rejoin, and every room whose create got a 201 is in the database,
   none twice;
6. throughput through the proxy with one and with two replicas of each, and direct (figures);
7. DPoP: a proof used at one replica is refused at the other, at the token endpoint and at the
   rooms API (the replay tables are in the databases the replicas share).

Stdlib only (DPoP proofs are signed by the openssl command, Ed25519). Everything listens on 127.0.0.1 and every process is stopped at the end."""

import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

BIN = os.environ["FLEET_BIN"]
AUTH_DB = os.environ["AUTH_DATABASE_URL"]
ROOMS_DB = os.environ["ROOMS_DATABASE_URL"]
SECONDS = int(os.environ.get("FLEET_SECONDS", "3"))
POLL = 2  # REVOCATION_POLL_SECONDS of the rooms replicas
KEY_REFRESH = 5  # KEY_REFRESH_SECONDS of the auth replicas
LIMIT = 3  # AUTH_FAILURE_LIMIT
WORK = tempfile.mkdtemp(prefix="fleet-")
ROOMS_PATH = "/external-api/v1.0/rooms"
EMAIL = "fleet@example.com"
# Rooms are shared with this user in room_cache_across_replicas.
GRANTEE = "colleague@example.com"

failures = []
figures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------------------------
# Processes


class Proc:
    """One replica (or the proxy): started, killed, restarted with the same settings."""

    def __init__(self, name, argv, env, ready_url=None):
        self.name, self.argv, self.env, self.ready_url = name, argv, env, ready_url
        self.proc = None

    def start(self):
        log = open(os.path.join(WORK, self.name + ".log"), "ab")
        self.proc = subprocess.Popen(
            self.argv, env={**os.environ, **self.env}, stdout=log, stderr=log
        )
        return self

    def wait_ready(self, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if request("GET", self.ready_url + "/readyz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        sys.exit(f"fleet: {self.name} did not become ready; its log:\n{self.log_tail()}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def log_tail(self):
        with open(os.path.join(WORK, self.name + ".log"), "rb") as f:
            return f.read()[-3000:].decode(errors="replace")


def cli(*args, env=None):
    out = subprocess.run(
        [f"{BIN}/auth-server", *args],
        env={**os.environ, "AUTH_DATABASE_URL": AUTH_DB, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        sys.exit(f"fleet: auth-server {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def psql(url, sql):
    return subprocess.run(
        ["psql", url, "-Atqc", sql], capture_output=True, text=True, check=True
    ).stdout.split()


# ---------------------------------------------------------------------------------------------
# HTTP


def request(method, url, body=None, headers=None, timeout=10):
    """(status, parsed JSON or None, headers) of one request on a fresh connection."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        return send(conn, method, u.path + (f"?{u.query}" if u.query else ""), body, headers)
    finally:
        conn.close()


def send(conn, method, path, body=None, headers=None):
    headers = dict(headers or {})
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    return r.status, doc, r.headers


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_request(base, client, email=EMAIL, source=None):
    headers = {"Authorization": basic(client["client_id"], client["client_secret"])}
    if source:
        headers["X-Forwarded-For"] = source
    return request(
        "POST",
        base + "/oauth/token",
        {"grant_type": "client_credentials", "scope": email},
        headers,
    )


def token(base, client):
    return token_for(base, client, EMAIL)


def token_for(base, client, email):
    status, doc, _ = token_request(base, client, email)
    if status != 200:
        sys.exit(f"fleet: token from {base} answered {status}: {doc}")
    return doc["access_token"]


def kid_of(jwt):
    head = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


def bearer(t):
    return {"Authorization": f"Bearer {t}"}


# ---------------------------------------------------------------------------------------------
# HAProxy


def haproxy_config(ports, sock):
    """deploy/haproxy/haproxy.cfg (what compose.scaled.yml runs) with loopback addresses: the
    same timeouts, retries, health checks and balancing, two static servers per backend in place
    of Docker's DNS, and a stats socket for this script."""
    with open("deploy/haproxy/haproxy.cfg") as f:
        lines = f.read().splitlines()
    out, skipping = [], False
    servers = {"auth-server:8081": ("a1", "a2"), "rooms-api:8082": ("r1", "r2")}
    for line in lines:
        words = line.split()
        if words[:1] == ["resolvers"]:
            skipping = True
            continue
        if skipping:
            if not line.strip():
                skipping = False
            continue
        if words[:1] == ["global"]:
            out += [line, f"    stats socket {sock} mode 600 level admin"]
        elif words[:1] == ["default-server"]:
            out.append(line.split(" resolvers ")[0])
        elif words[:1] == ["bind"]:
            port = {":8081": ports["auth_port"], ":8082": ports["rooms_port"]}[words[1]]
            out.append(f"    bind 127.0.0.1:{port}")
        elif words[:1] == ["server-template"]:
            out += [f"    server {n} 127.0.0.1:{ports[n]} check" for n in servers[words[3]]]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


class Haproxy:
    def __init__(self, ports):
        self.sock = os.path.join(WORK, "haproxy.sock")
        cfg = os.path.join(WORK, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(haproxy_config(ports, self.sock))
        self.proc = Proc("haproxy", ["haproxy", "-db", "-f", cfg], {})

    def command(self, line):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.sock)
        s.sendall(line.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        s.close()
        return out.decode()

    def servers(self):
        """{(backend, server): (status, requests sent)} from `show stat`."""
        lines = self.command("show stat").splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("svname") not in ("FRONTEND", "BACKEND", None):
                out[(row["pxname"], row["svname"])] = (row["status"], int(row["stot"] or 0))
        return out

    def wait_all(self, servers, want, seconds=30):
        """{(backend, server): seconds} until the proxy reports `want` for each, every one timed
        on its own from this call (one poll loop watches them all)."""
        t0 = time.time()
        found = {}
        while len(found) < len(servers) and time.time() - t0 < seconds:
            try:
                states = self.servers()
                for key in servers:
                    if key not in found and states[key][0].startswith(want):
                        found[key] = time.time() - t0
            except OSError:  # the proxy is still starting
                if self.proc.proc.poll() is not None:
                    sys.exit(f"fleet: haproxy exited: {self.proc.log_tail()}")
            time.sleep(0.02)
        missing = [k for k in servers if k not in found]
        if missing:
            sys.exit(f"fleet: {missing} not {want} after {seconds} s")
        return found

    def wait_status(self, backend, server, want, seconds=30):
        """Seconds until the proxy reports `want` (UP, DOWN) for the server."""
        t0 = time.time()
        while time.time() - t0 < seconds:
            try:
                if self.servers()[(backend, server)][0].startswith(want):
                    return time.time() - t0
            except OSError:  # the proxy is still starting
                if self.proc.proc.poll() is not None:
                    sys.exit(f"fleet: haproxy exited: {self.proc.log_tail()}")
            time.sleep(0.02)
        sys.exit(f"fleet: {backend}/{server} not {want} after {seconds} s")


# ---------------------------------------------------------------------------------------------
# Load


class Load:
    """Worker threads on keep-alive connections through the proxy, each looping: a token every
    `token_every` iterations, a room create, a GET of it. Every answer is recorded with its time;
    every room whose create got a 201 is kept."""

    def __init__(self, auth, rooms, client, workers=4, token_every=5, creates=True):
        self.auth, self.rooms, self.client = auth, rooms, client
        self.workers, self.token_every, self.creates = workers, token_every, creates
        self.stop = threading.Event()
        self.events = []  # (time, kind, status)
        self.rooms_created = []
        self.kids = set()
        self.lock = threading.Lock()

    def run(self):
        self.threads = [threading.Thread(target=self.worker) for _ in range(self.workers)]
        for t in self.threads:
            t.start()
        return self

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def record(self, kind, status):
        with self.lock:
            self.events.append((time.time(), kind, status))

    def call(self, conns, which, kind, method, path, body=None, headers=None):
        base = self.auth if which == "auth" else self.rooms
        u = urllib.parse.urlsplit(base)
        try:
            if conns.get(which) is None:
                conns[which] = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            status, doc, _ = send(conns[which], method, path, body, headers)
        except (OSError, http.client.HTTPException):
            if conns.get(which) is not None:
                conns[which].close()
            conns[which] = None
            status, doc = 0, None
        self.record(kind, status)
        return status, doc

    def worker(self):
        conns, jwt, i = {}, None, 0
        auth = {"Authorization": basic(self.client["client_id"], self.client["client_secret"])}
        form = {"grant_type": "client_credentials", "scope": EMAIL}
        while not self.stop.is_set():
            if jwt is None or i % self.token_every == 0:
                status, doc = self.call(conns, "auth", "token", "POST", "/oauth/token", form, auth)
                if status == 200:
                    jwt = doc["access_token"]
                    with self.lock:
                        self.kids.add(kid_of(jwt))
            i += 1
            if jwt is None:
                time.sleep(0.05)
                continue
            if self.creates:
                status, doc = self.call(
                    conns, "rooms", "create", "POST", ROOMS_PATH, "{}",
                    {**bearer(jwt), "Content-Type": "application/json"},
                )
                if status == 201:
                    with self.lock:
                        self.rooms_created.append(doc["id"])
                    room = doc["id"]
                else:
                    continue
            else:
                room = self.room
            self.call(conns, "rooms", "get", "GET", f"{ROOMS_PATH}/{room}", None, bearer(jwt))
        for c in conns.values():
            if c is not None:
                c.close()

    def bad(self, since=0.0, until=float("inf")):
        with self.lock:
            return [(t, k, s) for (t, k, s) in self.events if since <= t < until and not 200 <= s < 300]


# ---------------------------------------------------------------------------------------------
# The fleet


def main():
    ports = {k: free_port() for k in ("auth_port", "rooms_port", "a1", "a2", "r1", "r2")}
    proxy_auth = f"http://127.0.0.1:{ports['auth_port']}"
    proxy_rooms = f"http://127.0.0.1:{ports['rooms_port']}"
    kek = base64.b64encode(os.urandom(32)).decode()

    common = {"DATABASE_MIN_CONNECTIONS": "4", "TRUSTED_PROXIES": "127.0.0.1", "RUST_LOG": "warn"}
    auth_env = {
        **common,
        "AUTH_DATABASE_URL": AUTH_DB,
        "AUTH_ISSUER": proxy_auth,
        "AUTH_KEY_ENCRYPTION_KEY": kek,
        "KEY_REFRESH_SECONDS": str(KEY_REFRESH),
        "AUTH_FAILURE_LIMIT": str(LIMIT),
    }
    # Set up through the CLI, which talks to the database like the replicas.
    cli("user", "create", "--email", EMAIL, env=auth_env)
    cli("user", "create", "--email", GRANTEE, env=auth_env)
    rooms_scopes = ["--scope", "rooms:create", "--scope", "rooms:retrieve", "--scope", "rooms:list",
                    "--scope", "rooms:delete", "--scope", "rooms:grant-access"]

    def new_app(name):
        return json.loads(cli("app", "create", "--name", name, *rooms_scopes,
                              "--domain", "example.com", "--json", env=auth_env))

    resource = json.loads(cli("app", "create", "--name", "rooms-api", "--scope", "tokens:introspect",
                              "--scope", "tokens:revocations", "--scope", "users:resolve", "--domain", "example.invalid",
                              "--json", env=auth_env))
    admin_key = json.loads(cli("admin-key", "create", "--name", "fleet", "--json", env=auth_env))["key"]

    auth = {}
    admin_ports = {}
    for name in ("a1", "a2"):
        admin_ports[name] = free_port()
        METRICS[name] = free_port()
        auth[name] = Proc(name, [f"{BIN}/auth-server", "serve"], {
            **auth_env,
            "AUTH_LISTEN": f"127.0.0.1:{ports[name]}",
            "AUTH_METRICS_LISTEN": f"127.0.0.1:{METRICS[name]}",
            "AUTH_ADMIN_LISTEN": f"127.0.0.1:{admin_ports[name]}",
        }, f"http://127.0.0.1:{ports[name]}")
    rooms = {}
    for name in ("r1", "r2"):
        rooms[name] = Proc(name, [f"{BIN}/rooms-api", "serve"], {
            **common,
            "ROOMS_DATABASE_URL": ROOMS_DB,
            "ROOMS_LISTEN": f"127.0.0.1:{ports[name]}",
            "ROOMS_METRICS_LISTEN": f"127.0.0.1:{METRICS.setdefault(name, free_port())}",
            "ROOMS_PUBLIC_URL": proxy_rooms,
            "TOKEN_ISSUER": proxy_auth,
            # Keys and the feed come through the proxy, from either auth replica.
            "AUTH_SERVER_URL": proxy_auth,
            "REVOCATION_CLIENT_ID": resource["client_id"],
            "REVOCATION_CLIENT_SECRET": resource["client_secret"],
            "REVOCATION_POLL_SECONDS": str(POLL),
        }, f"http://127.0.0.1:{ports[name]}")

    proxy = Haproxy(ports)
    everything = [*auth.values(), *rooms.values(), proxy.proc]
    try:
        for p in auth.values():
            p.start()
        for p in auth.values():
            p.wait_ready()
        proxy.proc.start()
        proxy.wait_status("auth", "a1", "UP")
        proxy.wait_status("auth", "a2", "UP")
        for p in rooms.values():
            p.start()
        for p in rooms.values():
            p.wait_ready()
        proxy.wait_status("rooms", "r1", "UP")
        proxy.wait_status("rooms", "r2", "UP")
        print(f"fleet: HAProxy {proxy_auth} -> a1, a2; {proxy_rooms} -> r1, r2 (logs in {WORK})")

        cross_replica(auth, rooms, new_app("cross"))
        dpop_replay_across_replicas(auth, rooms, new_app("dpop"), proxy_auth, proxy_rooms)
        room_cache_across_replicas(auth, rooms, new_app("cached"))
        rotation_and_deactivation(auth, rooms, admin_ports, admin_key, new_app("rotated"), new_app("deactivated"), auth_env)
        shared_limit(proxy, proxy_auth, new_app("guessed"))
        key_rotation_under_load(proxy_auth, proxy_rooms, auth, new_app("keys"), auth_env)
        kill_and_rejoin(proxy, proxy_auth, proxy_rooms, auth, rooms, new_app("load"))
        throughput(proxy, proxy_auth, proxy_rooms, auth, rooms, new_app("bench"))
    finally:
        for p in everything:
            p.stop()

    print()
    for row in figures:
        print(row)
    if os.environ.get("FLEET_WRITE"):
        write_results()
    if failures:
        sys.exit(f"fleet: {len(failures)} check(s) failed: {failures}")
    print("fleet: every check passed")


def cross_replica(auth, rooms, client):
    for a in auth.values():
        t = token(a.ready_url, client)
        for r in rooms.values():
            status, doc, _ = request("POST", r.ready_url + ROOMS_PATH, "{}",
                                     {**bearer(t), "Content-Type": "application/json"})
            ok = status == 201
            for r2 in rooms.values():
                ok = ok and request("GET", f"{r2.ready_url}{ROOMS_PATH}/{doc['id']}",
                                    headers=bearer(t))[0] == 200
            check(ok, f"a token from {a.name} creates a room on {r.name}, read back on both rooms replicas")


class DpopKey:
    """An Ed25519 key pair made and used by the openssl command: proofs without a crypto module."""

    def __init__(self):
        self.pem = os.path.join(WORK, "dpop.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.pem],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", self.pem, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(der[-32:])}

    def proof(self, method, url, access_token=None):
        claims = {"jti": os.urandom(16).hex(), "htm": method, "htu": url, "iat": int(time.time())}
        if access_token:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        header = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": self.jwk}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        path = os.path.join(WORK, "dpop.input")
        with open(path, "wb") as f:
            f.write(signing_input)
        signature = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", self.pem,
                                    "-in", path], check=True, capture_output=True).stdout
        return signing_input.decode() + "." + b64url(signature)


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def dpop_replay_across_replicas(auth, rooms, client, proxy_auth, proxy_rooms):
    """A proof accepted by one replica is a replay at the other: the token endpoint's and the
    rooms API's `dpop_proof_jtis` are rows of the databases both replicas of each share."""
    key = DpopKey()
    (a1, a2), (r1, r2) = auth.values(), rooms.values()
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": EMAIL})
    headers = {"Authorization": basic(client["client_id"], client["client_secret"]),
               "Content-Type": "application/x-www-form-urlencoded"}
    # The issuer is the proxy's URL: what the proof names, whichever replica gets it.
    proof = key.proof("POST", proxy_auth + "/oauth/token")
    first = request("POST", a1.ready_url + "/oauth/token", form, {**headers, "DPoP": proof})
    again = request("POST", a2.ready_url + "/oauth/token", form, {**headers, "DPoP": proof})
    check(first[0] == 200 and first[1].get("token_type") == "DPoP"
          and again[0] == 400 and again[1].get("error") == "invalid_dpop_proof",
          f"a DPoP proof accepted by a1's token endpoint is refused by a2's ({first[0]}, {again[0]})")
    if first[0] != 200:
        return
    jwt = first[1]["access_token"]
    proof = key.proof("GET", proxy_rooms + ROOMS_PATH, jwt)
    dpop = {"Authorization": f"DPoP {jwt}", "DPoP": proof}
    used = request("GET", r1.ready_url + ROOMS_PATH, headers=dpop)
    replayed = request("GET", r2.ready_url + ROOMS_PATH, headers=dpop)
    check(used[0] == 200 and replayed[0] == 401 and replayed[1].get("error") == "invalid_dpop_proof",
          f"a DPoP proof accepted by r1 is refused by r2 ({used[0]}, {replayed[0]})")
    fresh = {"Authorization": f"DPoP {jwt}", "DPoP": key.proof("GET", proxy_rooms + ROOMS_PATH, jwt)}
    check(request("GET", r2.ready_url + ROOMS_PATH, headers=fresh)[0] == 200,
          "a fresh proof for the same token works at r2")
    check(request("GET", r1.ready_url + ROOMS_PATH, headers=bearer(jwt))[0] == 401,
          "the DPoP-bound token sent as Bearer is refused")


def refused_on_both_rooms(rooms, jwt):
    """Seconds until both rooms replicas answer 401 to `jwt` (None: not within 3 polls)."""
    t0 = time.time()
    while time.time() - t0 < 3 * POLL + 2:
        if all(request("GET", r.ready_url + ROOMS_PATH, headers=bearer(jwt))[0] == 401
               for r in rooms.values()):
            return time.time() - t0
        time.sleep(0.05)
    return None


# The replicas' metrics ports, by name.
METRICS = {}


def cache_hits(name, metric):
    """`metric`{result="hit"} of one replica (its metrics listener, by name)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS[name]}/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(metric + '{result="hit"}'):
            return float(line.split()[-1])
    return 0.0


def row_cache_hits(name):
    return cache_hits(name, "auth_row_cache_total")


def room_cache_hits(name):
    return cache_hits(name, "rooms_room_cache_total")


def cached_on(base, name, client):
    """Token requests to replica `name` until one is answered from its row cache (a write just
    before, by any replica, empties it once more when its signal arrives)."""
    for _ in range(40):
        before = row_cache_hits(name)
        token(base, client)
        if row_cache_hits(name) > before:
            return True
        time.sleep(0.025)
    return False


def room_cached_on(r, path, jwt):
    """GETs `path` on rooms replica `r` until one is answered from its room cache."""
    for _ in range(40):
        before = room_cache_hits(r.name)
        status = request("GET", r.ready_url + path, headers=bearer(jwt))[0]
        if status == 200 and room_cache_hits(r.name) > before:
            return True
        time.sleep(0.025)
    return False


def room_cache_across_replicas(auth, rooms, client):
    """A room and a list page cached by r2 and deleted through r1 are gone from r2 at once:
    the delete's NOTIFY reaches r2's LISTEN connection before the next request."""
    r1, r2 = rooms.values()
    jwt = token(next(iter(auth.values())).ready_url, client)
    status, doc, _ = request("POST", r1.ready_url + ROOMS_PATH, "{}",
                             {**bearer(jwt), "Content-Type": "application/json"})
    check(status == 201, f"a room created on r1 ({status})")
    path = f"{ROOMS_PATH}/{doc['id']}"
    # The creation's own signal reaches r2 too and would empty what it cached just before.
    time.sleep(0.3)
    check(room_cached_on(r2, path, jwt) and room_cached_on(r2, ROOMS_PATH, jwt),
          "r2 answers the room and the list from its room cache")
    check(request("DELETE", r1.ready_url + path, headers=bearer(jwt))[0] == 204,
          "the room deleted through r1")
    t0 = time.time()
    got = request("GET", r2.ready_url + path, headers=bearer(jwt))[0]
    listed = request("GET", r2.ready_url + ROOMS_PATH, headers=bearer(jwt))[1] or {}
    took = time.time() - t0
    check(got == 404 and listed.get("count") == 0,
          f"r2 refuses the deleted room and lists none on its next requests ({got}, count "
          f"{listed.get('count')}, {round(took * 1000)} ms)")

    # Sharing: the grantee's list, cached by r2, shows a room granted through r1 on its next
    # request (the grant resolves the grantee at the auth-server, through the proxy-less a1).
    status, doc, _ = request("POST", r1.ready_url + ROOMS_PATH, "{}",
                             {**bearer(jwt), "Content-Type": "application/json"})
    check(status == 201, f"a second room created on r1 ({status})")
    grantee_jwt = token_for(next(iter(auth.values())).ready_url, client, GRANTEE)
    time.sleep(0.3)
    check(room_cached_on(r2, ROOMS_PATH, grantee_jwt), "r2 answers the grantee's empty list from its cache")
    status, granted, _ = request("POST", f"{r1.ready_url}{ROOMS_PATH}/{doc['id']}/grant-access/",
                                 json.dumps({"email": GRANTEE, "role": "member"}),
                                 {**bearer(jwt), "Content-Type": "application/json"})
    check(status == 201 and (granted or {}).get("role") == "member",
          f"the room shared with {GRANTEE} through r1 ({status})")
    t0 = time.time()
    listed = request("GET", r2.ready_url + ROOMS_PATH, headers=bearer(grantee_jwt))[1] or {}
    took = time.time() - t0
    roles = [r.get("role") for r in listed.get("results", [])]
    check(listed.get("count") == 1 and roles == ["member"],
          f"r2 lists the shared room for the grantee on its next request (count {listed.get('count')}, "
          f"roles {roles}, {round(took * 1000)} ms)")


def rotation_and_deactivation(auth, rooms, admin_ports, admin_key, rotated, deactivated, auth_env):
    a1, a2 = auth["a1"].ready_url, auth["a2"].ready_url
    # Both replicas have verified (and cached) the old secret, and hold the application's row.
    old_token = token(a1, rotated)
    check(cached_on(a2, "a2", rotated) and cached_on(a1, "a1", rotated),
          "both auth replicas answer the client from their row cache")
    status, doc, _ = request(
        "POST", f"http://127.0.0.1:{admin_ports['a1']}/admin/v1/applications/{rotated['client_id']}/rotate-secret",
        "{}", {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"})
    check(status == 200 and doc.get("client_secret"), f"rotate-secret through a1's admin API ({status})")
    new = {**rotated, "client_secret": doc["client_secret"]}
    check(token_request(a2, rotated)[0] == 401, "the old secret is refused by a2 at once")
    check(token_request(a1, rotated)[0] == 401, "the old secret is refused by a1 at once")
    check(token_request(a2, new)[0] == 200, "the new secret works on a2 at once")
    took = refused_on_both_rooms(rooms, old_token)
    check(took is not None and took <= POLL + 1.5,
          f"a token issued before the rotation is refused by both rooms replicas within one poll ({took and round(took, 2)} s, poll {POLL} s)")

    live = token(a2, deactivated)
    check(cached_on(a2, "a2", deactivated) and cached_on(a1, "a1", deactivated),
          "both auth replicas answer the second client from their row cache")
    cli("app", "update", deactivated["client_id"], "--deactivate", env=auth_env)
    check(token_request(a1, deactivated)[0] == 401 and token_request(a2, deactivated)[0] == 401,
          "app update --deactivate by the CLI: both auth replicas refuse the client at once")
    took = refused_on_both_rooms(rooms, live)
    check(took is not None and took <= POLL + 1.5,
          f"its live token is refused by both rooms replicas within one poll ({took and round(took, 2)} s)")


def shared_limit(proxy, proxy_auth, client):
    source = "198.51.100.7"
    wrong = {**client, "client_secret": "x" * 48}
    before = proxy.servers()
    statuses = [token_request(proxy_auth, wrong, source=source)[0] for _ in range(2 * LIMIT + 2)]
    after = proxy.servers()
    spread = [after[("auth", s)][1] - before[("auth", s)][1] for s in ("a1", "a2")]
    check(min(spread) >= LIMIT, f"the proxy spread the {len(statuses)} guesses over both replicas ({spread})")
    check(statuses == [401] * LIMIT + [429] * (len(statuses) - LIMIT),
          f"guesses on both replicas meet one limit of {LIMIT}: {statuses}")
    check(token_request(proxy_auth, client, source=source)[0] == 200,
          "the correct secret from the same source still gets its token (no lock-out)")


def key_rotation_under_load(proxy_auth, proxy_rooms, auth, client, auth_env):
    old = {kid_of(token(a.ready_url, client)) for a in auth.values()}
    check(len(old) == 1, "both auth replicas sign with one key")
    load = Load(proxy_auth, proxy_rooms, client, workers=3, token_every=1).run()
    time.sleep(1)
    t_rotate = time.time()
    cli("keys", "rotate", "--now", env=auth_env)
    # Each replica signs with it from its own next refresh: wait for both, and a little after.
    time.sleep(KEY_REFRESH + 3)
    load.join()
    new = {kid_of(token(a.ready_url, client)) for a in auth.values()}
    check(len(new) == 1 and new != old, "after KEY_REFRESH_SECONDS both replicas sign with the new key")
    check(load.kids >= old | new, f"the load saw tokens of both keys ({len(load.kids)} kids)")
    bad = load.bad(since=t_rotate)
    n = len([e for e in load.events if e[0] >= t_rotate])
    check(not bad, f"keys rotate --now under load: {n} requests since, none refused ({bad[:5]})")


def kill_and_rejoin(proxy, proxy_auth, proxy_rooms, auth, rooms, client):
    rows_before = set(psql(ROOMS_DB, "select id from rooms"))
    load = Load(proxy_auth, proxy_rooms, client, workers=4, token_every=5).run()
    time.sleep(3)
    killed = [("auth", "a1"), ("rooms", "r1")]
    t_kill = time.time()
    auth["a1"].kill9()
    rooms["r1"].kill9()
    # Each replica's detection timed on its own, from the kill.
    down = proxy.wait_all(killed, "DOWN")
    d_auth, d_rooms = down[killed[0]], down[killed[1]]
    window_end = t_kill + max(d_auth, d_rooms)
    time.sleep(2)
    before = proxy.servers()
    auth["a1"].start()
    rooms["r1"].start()
    # And each one's return to rotation, from the restart.
    up = proxy.wait_all(killed, "UP", 60)
    up_auth, up_rooms = up[killed[0]], up[killed[1]]
    time.sleep(3)
    load.join()
    after = proxy.servers()
    t_end = time.time()

    total = len(load.events)
    bad = load.bad()
    inside = [e for e in bad if t_kill <= e[0] <= window_end + 0.5]
    outside = [e for e in bad if e not in inside]
    figures.append(f"| kill -9 of one auth and one rooms replica under load | {total} requests, "
                   f"{len(bad)} failed ({statuses(bad)}; {len(inside)} inside the detection window) | detection "
                   f"{d_auth:.2f} s auth, {d_rooms:.2f} s rooms | back in rotation "
                   f"{up_auth:.1f} s / {up_rooms:.1f} s after restart |")
    print(figures[-1])
    check(not outside, f"no failure outside the detection window ({outside[:5]})")
    check(not [e for e in bad if e[2] in (401, 403, 503)],
          "no 401 or 503 at all: tokens of the killed replica verify, and the rejoining replicas take traffic only when ready")
    joined = [after[(b, s)][1] - before[(b, s)][1] for (b, s) in (("auth", "a1"), ("rooms", "r1"))]
    check(min(joined) > 0, f"the restarted replicas took traffic again ({joined} requests)")

    acked = load.rooms_created
    in_db = set(psql(ROOMS_DB, "select id from rooms")) - rows_before
    missing = [r for r in acked if r not in in_db]
    check(len(acked) == len(set(acked)), f"no room acknowledged twice ({len(acked)} 201s)")
    check(not missing, f"every acknowledged room is in the database: {len(acked) - len(missing)} of {len(acked)}")
    figures.append(f"| rooms acknowledged (201) during the kill | {len(acked)}, all in the database; "
                   f"{len(in_db - set(acked))} more rows (committed, answer lost to the kill) | {t_end - t_kill:.0f} s from kill to end | |")


def statuses(events):
    """"2 × 502, 1 × connection error" for a list of (time, kind, status)."""
    counts = {}
    for _, _, s in events:
        counts[s] = counts.get(s, 0) + 1
    return ", ".join(f"{n} × {s or 'connection error'}" for s, n in sorted(counts.items())) or "none"


def wrk(url, method, auth, body=""):
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_AUTH": auth, "BENCH_BODY": body,
           "BENCH_CT": "application/x-www-form-urlencoded" if body else ""}
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{SECONDS}s", "--timeout", "10s", "-s", "bench/lua/request.lua", url],
        env=env, capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("BENCH ")][-1].split()
    return float(line[1]), float(line[2]), int(line[5])


def throughput(proxy, proxy_auth, proxy_rooms, auth, rooms, client):
    jwt = token(proxy_auth, client)
    status, doc, _ = request("POST", proxy_rooms + ROOMS_PATH, "{}", {**bearer(jwt), "Content-Type": "application/json"})
    room = doc["id"]
    cred = basic(client["client_id"], client["client_secret"])
    form = f"grant_type=client_credentials&scope={urllib.parse.quote(EMAIL)}"

    def both():
        t = wrk(proxy_auth + "/oauth/token", "POST", cred, form)
        g = wrk(f"{proxy_rooms}{ROOMS_PATH}/{room}", "GET", f"Bearer {jwt}")
        return t, g

    direct = (wrk(auth["a2"].ready_url + "/oauth/token", "POST", cred, form),
              wrk(f"{rooms['r2'].ready_url}{ROOMS_PATH}/{room}", "GET", f"Bearer {jwt}"))
    two = both()
    for b, s in (("auth", "a1"), ("rooms", "r1")):
        proxy.command(f"disable server {b}/{s}")
    one = both()
    for b, s in (("auth", "a1"), ("rooms", "r1")):
        proxy.command(f"enable server {b}/{s}")
    for label, (t, g) in (("one replica, no proxy", direct), ("proxy, 1 replica of each", one),
                          ("proxy, 2 replicas of each", two)):
        figures.append(f"| {label} | token {t[0]:.0f} req/s (p50 {t[1]:.2f} ms) | room GET {g[0]:.0f} req/s "
                       f"(p50 {g[1]:.2f} ms) | errors {t[2] + g[2]} |")
        check(t[2] == 0 and g[2] == 0, f"{label}: no errors under wrk")


def write_results():
    path = "bench/RESULTS.md"
    with open(path) as f:
        text = f.read()
    head = "## Fleet"
    section = [head, "",
               f"`scripts/fleet` ({os.environ.get('FLEET_PROFILE', 'debug')} build, "
               f"{time.strftime('%Y-%m-%d')}): HAProxy on loopback, two auth-servers and two rooms "
               f"APIs on PostgreSQL, wrk -t2 -c16 for {SECONDS} s a figure. On 2 cores four "
               "replicas, the proxy, PostgreSQL and wrk share the same CPUs: the 1-vs-2 figures show "
               "the proxy's overhead and the cost of more processes, not scale-out.", "",
               "| scenario | | | |", "|---|---|---|---|", *figures, ""]
    start = text.find(head)
    if start >= 0:
        end = text.find("\n## ", start + len(head))
        text = text[:start] + "\n".join(section) + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(section)
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
