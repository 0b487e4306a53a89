#!/usr/bin/env python3
"""Checks compose.yml without a Docker engine.

1. Parses compose.yml and checks the keys the deployment relies on (services, health checks,
   depends_on conditions, secrets declared and files named, env_file, ports, no secret inline).
2. Runs the real binaries against the local PostgreSQL with exactly the environment compose gives
   them: .env.example as the env file, each service's `environment`, /run/secrets/* mapped to
   temporary files, the postgres init script creating the two databases and roles. Then gets a
   token, creates a room, and checks the rooms role cannot connect to the auth database.
Exit 0 when all holds. Needs PyYAML, psql and a PostgreSQL on 127.0.0.1:5432 (trust auth).
"""
import json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request, base64
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("COMPOSE_CHECK_BIN", os.path.join(ROOT, "target", "debug"))
PG_ADMIN = os.environ.get("PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def fail(msg):
    print(f"compose-check: {msg}", file=sys.stderr)
    sys.exit(1)


def check_structure(compose):
    services = compose.get("services", {})
    for name in ("postgres", "auth-server", "rooms-api"):
        if name not in services:
            fail(f"service {name} missing")
        if "healthcheck" not in services[name]:
            fail(f"service {name} has no healthcheck")
    if not any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"].get("volumes", [])):
        fail("postgres has no data volume")
    deps = services["rooms-api"].get("depends_on", {})
    if deps.get("postgres", {}).get("condition") != "service_healthy" or deps.get("auth-server", {}).get("condition") != "service_healthy":
        fail("rooms-api must depend on healthy postgres and auth-server")
    if services["auth-server"].get("depends_on", {}).get("postgres", {}).get("condition") != "service_healthy":
        fail("auth-server must depend on a healthy postgres")
    declared = compose.get("secrets", {})
    for name, svc in services.items():
        for s in svc.get("secrets", []):
            if s not in declared or "file" not in declared[s]:
                fail(f"{name} uses undeclared secret {s}")
        env = svc.get("environment", {})
        for k, v in env.items():
            if re.search(r"(SECRET|PASSWORD|KEY)$", k) and not k.endswith("_FILE"):
                fail(f"{name}: secret {k} given inline; use a _FILE secret")
            if isinstance(v, str) and v.startswith("/run/secrets/") and v.split("/")[-1] not in svc.get("secrets", []):
                fail(f"{name}: {k} points at a secret the service does not mount")
        if name != "postgres":
            if svc.get("env_file") != ".env":
                fail(f"{name} must read .env")
            if svc.get("build", {}).get("target") != name:
                fail(f"{name} must build the {name} Dockerfile target")
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        dockerfile = f.read()
    for target in ("auth-server", "rooms-api"):
        if f" AS {target}" not in dockerfile:
            fail(f"Dockerfile lacks the {target} stage")
    if "USER app" not in dockerfile:
        fail("Dockerfile must run as a non-root user")


class ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags (`!reset`, `!override`) that override files use."""


ComposeLoader.add_constructor("!reset", lambda loader, node: None)
ComposeLoader.add_constructor(
    "!override",
    lambda loader, node: loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node),
)


def check_scaled(compose, scaled):
    """compose.scaled.yml: both services replicated behind one proxy whose HAProxy config is
    valid, the proxy the only trusted X-Forwarded-For source, migrations run once before any
    replica, and no replica publishing a host port (two would collide)."""
    services = scaled.get("services", {})
    proxy = services.get("proxy")
    if not proxy:
        fail("compose.scaled.yml: no proxy service")
    proxy_ip = proxy.get("networks", {}).get("default", {}).get("ipv4_address")
    if not proxy_ip:
        fail("compose.scaled.yml: the proxy needs a fixed address (TRUSTED_PROXIES names it)")
    cfg = None
    for v in proxy.get("volumes", []):
        host, _, target = v.partition(":")
        if target.startswith("/usr/local/etc/haproxy/haproxy.cfg"):
            cfg = os.path.join(ROOT, host)
    if not cfg or not os.path.isfile(cfg):
        fail("compose.scaled.yml: the proxy's haproxy.cfg is not mounted from the repository")
    with open(cfg) as f:
        text = f.read()
    for name, port in (("auth-server", 8081), ("rooms-api", 8082)):
        svc = services.get(name, {})
        if svc.get("deploy", {}).get("replicas", 1) < 2:
            fail(f"compose.scaled.yml: {name} needs deploy.replicas >= 2")
        if "ports" not in svc or svc["ports"]:
            fail(f"compose.scaled.yml: {name} must reset its published ports (replicas collide)")
        if svc.get("environment", {}).get("TRUSTED_PROXIES") != proxy_ip:
            fail(f"compose.scaled.yml: {name} must trust only the proxy ({proxy_ip})")
        if f"{name}:{port}" not in text or "/readyz" not in text:
            fail(f"haproxy.cfg must balance {name}:{port} with /readyz checks")
        if name not in proxy.get("depends_on", {}):
            fail(f"compose.scaled.yml: the proxy must wait for {name}")
        migrate = "auth-migrate" if name == "auth-server" else "rooms-migrate"
        m = services.get(migrate, {})
        if m.get("command") != ["migrate"] or m.get("build", {}).get("target") != name:
            fail(f"compose.scaled.yml: {migrate} must run `{name} migrate`")
        if svc.get("depends_on", {}).get(migrate, {}).get("condition") != "service_completed_successfully":
            fail(f"compose.scaled.yml: {name} must start after {migrate} completed")
        for secret in m.get("secrets", []):
            if secret not in compose.get("secrets", {}):
                fail(f"compose.scaled.yml: {migrate} uses undeclared secret {secret}")
    if services["rooms-api"].get("environment", {}).get("AUTH_SERVER_URL") != "http://proxy:8081":
        fail("compose.scaled.yml: the rooms APIs must reach the auth-servers through the proxy")
    if shutil.which("haproxy"):
        r = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"haproxy -c {cfg}: {r.stdout}{r.stderr}")


def read_env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                if v != "":
                    env[k] = v
    return env


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def psql(sql, url=PG_ADMIN, check=True):
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-Atqc", sql], capture_output=True, text=True, check=check)


def http(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready(url, proc, log):
    for _ in range(300):
        if proc.poll() is not None:
            fail(f"{url} exited early:\n{open(log).read()[-3000:]}")
        try:
            if http("GET", f"{url}/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    fail(f"{url} not ready:\n{open(log).read()[-3000:]}")


def service_env(compose, name, env_file, secret_dir, rewrite):
    env = {"PATH": os.environ.get("PATH", "")}
    env.update(env_file)
    for k, v in compose["services"][name].get("environment", {}).items():
        v = str(v)
        if v.startswith("/run/secrets/"):
            v = os.path.join(secret_dir, v.split("/")[-1])
        env[k] = rewrite(v)
    return env


def main():
    with open(os.path.join(ROOT, "compose.yml")) as f:
        compose = yaml.safe_load(f)
    check_structure(compose)
    with open(os.path.join(ROOT, "compose.scaled.yml")) as f:
        check_scaled(compose, yaml.load(f, Loader=ComposeLoader))
    print("compose-check: compose.yml and compose.scaled.yml structure ok")

    if psql("select 1", check=False).returncode != 0:
        # The wiring run is what this check promises: no PostgreSQL is a failure (scripts/ensure-postgres).
        sys.exit("compose-check: PostgreSQL not reachable at 127.0.0.1:5432; run scripts/ensure-postgres")
    suffix = secrets.token_hex(4)
    auth_db, rooms_db = f"auth_{suffix}", f"rooms_{suffix}"
    tmp = tempfile.mkdtemp()
    secret_dir = os.path.join(tmp, "secrets")
    os.makedirs(secret_dir)

    def write(name, value):
        with open(os.path.join(secret_dir, name), "w") as f:
            f.write(value)

    write("auth_db_password", secrets.token_hex(12))
    write("rooms_db_password", secrets.token_hex(12))
    write("auth_database_url", f"postgres://{auth_db}_owner:x@postgres:5432/{auth_db}")
    write("rooms_database_url", f"postgres://{rooms_db}_owner:x@postgres:5432/{rooms_db}")
    write("auth_key_encryption_key", base64.b64encode(os.urandom(32)).decode())
    write("revocation_client_secret", "")
    procs = []
    try:
        init_env = dict(os.environ, AUTH_DB_NAME=auth_db, ROOMS_DB_NAME=rooms_db,
                        AUTH_DB_PASSWORD_FILE=os.path.join(secret_dir, "auth_db_password"),
                        ROOMS_DB_PASSWORD_FILE=os.path.join(secret_dir, "rooms_db_password"),
                        PSQL=f"psql -v ON_ERROR_STOP=1 {PG_ADMIN}")
        subprocess.run(["sh", os.path.join(ROOT, "deploy/postgres/init.sh")], env=init_env, check=True)

        auth_port, rooms_port = free_port(), free_port()
        ports = {"8081": auth_port, "8082": rooms_port, "9081": free_port(), "9082": free_port(),
                 "9091": free_port()}

        def rewrite(v):
            v = v.replace("@postgres:5432", "@127.0.0.1:5432").replace("auth-server:8081", f"127.0.0.1:{auth_port}")
            m = re.fullmatch(r"0\.0\.0\.0:(\d+)", v)
            return f"127.0.0.1:{ports[m.group(1)]}" if m else v

        env_file = read_env_file(os.path.join(ROOT, ".env.example"))
        env_file["AUTH_ISSUER"] = env_file["TOKEN_ISSUER"] = f"http://127.0.0.1:{auth_port}"
        for url_file in ("auth_database_url", "rooms_database_url"):
            p = os.path.join(secret_dir, url_file)
            with open(p) as f:
                v = rewrite(f.read())
            with open(p, "w") as f:
                f.write(v)
        auth_env = service_env(compose, "auth-server", env_file, secret_dir, rewrite)
        cli = lambda *args: json.loads(subprocess.run([os.path.join(BIN, "auth-server"), *args], env=auth_env,
                                                      capture_output=True, text=True, check=True).stdout)
        rs = cli("app", "create", "--name", "rooms-api", "--scope", "tokens:introspect", "--scope", "tokens:revocations", "--scope", "users:resolve", "--json")
        write("revocation_client_secret", rs["client_secret"])
        env_file["REVOCATION_CLIENT_ID"] = rs["client_id"]
        cli("user", "create", "--email", "jane@example.com", "--json")
        app = cli("app", "create", "--name", "Demo", "--scope", "rooms:create", "--scope", "rooms:list", "--json")

        auth_log, rooms_log = os.path.join(tmp, "auth.log"), os.path.join(tmp, "rooms.log")
        auth = subprocess.Popen([os.path.join(BIN, "auth-server")], env=auth_env, stderr=open(auth_log, "w"))
        procs.append(auth)
        wait_ready(f"http://127.0.0.1:{auth_port}", auth, auth_log)
        rooms_env = service_env(compose, "rooms-api", env_file, secret_dir, rewrite)
        rooms = subprocess.Popen([os.path.join(BIN, "rooms-api")], env=rooms_env, stderr=open(rooms_log, "w"))
        procs.append(rooms)
        wait_ready(f"http://127.0.0.1:{rooms_port}", rooms, rooms_log)

        basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
        status, body = http("POST", f"http://127.0.0.1:{auth_port}/oauth/token",
                            b"grant_type=client_credentials&scope=jane%40example.com",
                            {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            fail(f"token: {status} {body!r}")
        token = json.loads(body)["access_token"]
        status, body = http("POST", f"http://127.0.0.1:{rooms_port}/external-api/v1.0/rooms", b"",
                            {"Authorization": f"Bearer {token}"})
        if status != 201:
            fail(f"create room: {status} {body!r}")
        status, _ = http("GET", f"http://127.0.0.1:{ports['9082']}/metrics")
        if status != 200:
            fail("rooms-api metrics listener not answering")
        denied = psql("select 1", url=f"postgres://{rooms_db}_owner@127.0.0.1:5432/{auth_db}", check=False)
        if denied.returncode == 0:
            fail("the rooms role can connect to the auth database")
        for p in procs:
            p.send_signal(signal.SIGTERM)
            if p.wait(timeout=30) != 0:
                fail("a service did not exit 0 on SIGTERM")
        print("compose-check: both services ran with compose's environment on PostgreSQL; token, room, role separation ok")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for db in (auth_db, rooms_db):
            psql(f'drop database if exists "{db}"', check=False)
        for role in (f"{auth_db}_owner", f"{rooms_db}_owner"):
            psql(f'drop role if exists "{role}"', check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
