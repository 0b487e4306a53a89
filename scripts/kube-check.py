#!/usr/bin/env python3
"""Checks deploy/kubernetes/ without a cluster, for each overlay (single, fleet):

1. `kubectl kustomize` renders it (Debian's kubernetes-client when kubectl is missing);
2. the output validates against the Kubernetes API schema, strictly (kubernetes-validate, PyPI);
3. checkov's Kubernetes checks pass, but for those the README justifies (its "Security linter"
   list between the kube-check markers: the skip list is read from there, so the two can't drift);
4. the real binaries accept the environment each Deployment and the migrate Job set: every
   variable is one the binary knows (its `--help` lists the env names), and with exactly that
   environment (the ConfigMap, the container's `env`, the Secrets as files) the migrations run,
   the auth-server and then the rooms API (with a real application of its own) answer /readyz —
   on PostgreSQL for `fleet`, on SQLite files for `single`.

Tools go to a virtualenv under target/kube-tools. Binaries: KUBE_CHECK_BIN (default
target/debug). Needs a PostgreSQL on 127.0.0.1:5432 (trust auth). Exit 0 when all holds.
"""
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("KUBE_CHECK_BIN", os.path.join(ROOT, "target", "debug"))
PG_ADMIN = os.environ.get("PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
TOOLS = os.path.join(ROOT, "target", "kube-tools")
OVERLAYS = ["single", "fleet"]
PINNED = ["kubernetes-validate==1.37.0", "checkov==3.3.30"]
START, END = "<!-- kube-check:justified:start -->", "<!-- kube-check:justified:end -->"


def fail(msg):
    print(f"kube-check: {msg}", file=sys.stderr)
    sys.exit(1)


def tools():
    """kubectl, and a virtualenv holding the validator and the linter."""
    if shutil.which("kubectl") is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "kubernetes-client"], check=True)
    py = os.path.join(TOOLS, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", TOOLS], check=True)
    have = subprocess.run([py, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    if not all(p.lower() in have.lower() for p in PINNED):
        subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "pyyaml", *PINNED], check=True)
    return os.path.join(TOOLS, "bin")


def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, "deploy", "kubernetes", "overlays", overlay)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"{overlay}: kubectl kustomize failed:\n{out.stderr}")
    return out.stdout


def justified():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    if START not in text or END not in text:
        fail("README.md lacks the kube-check justified-checks markers")
    section = text[text.index(START):text.index(END)]
    return sorted(set(re.findall(r"`(CKV2?_K8S_\d+)`", section)))


def lint(bin_dir, path, skip):
    cmd = [os.path.join(bin_dir, "checkov"), "-f", path, "--framework", "kubernetes", "--compact",
           "--quiet", "--output", "json"]
    if skip:
        cmd += ["--skip-check", ",".join(skip)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        fail(f"checkov gave no report:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    return passed, [f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in failed]


def documents(bin_dir, text):
    out = subprocess.run([os.path.join(bin_dir, "python"), "-c",
                          "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))"],
                         input=text, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def known_env(binary):
    """The environment variables a binary reads: clap prints them as [env: NAME=] in --help,
    plus the _FILE forms of its secrets (server_kit::secrets)."""
    names = set()
    for sub in (["--help"], ["serve", "--help"], ["migrate", "--help"]):
        out = subprocess.run([binary, *sub], capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
        names |= set(re.findall(r"\[env: ([A-Z0-9_]+)=", out.stdout))
    # Read by name, not by clap: secrets (value or _FILE) and the log filter.
    names |= {"RUST_LOG", "AUTH_DATABASE_URL_FILE", "AUTH_KEY_ENCRYPTION_KEY", "AUTH_KEY_ENCRYPTION_KEY_FILE",
              "ROOMS_DATABASE_URL_FILE", "REVOCATION_CLIENT_SECRET", "REVOCATION_CLIENT_SECRET_FILE",
              "INTROSPECTION_CLIENT_SECRET", "INTROSPECTION_CLIENT_SECRET_FILE", "USERS_CLIENT_SECRET",
              "USERS_CLIENT_SECRET_FILE", "TOKEN_HS256_SECRET", "TOKEN_HS256_SECRET_FILE"}
    return names


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def psql(sql):
    subprocess.run(["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-Atqc", sql], check=True, capture_output=True)


def ready(url, proc, log):
    for _ in range(300):
        if proc.poll() is not None:
            fail(f"{url} exited early:\n{open(log).read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    fail(f"{url} not ready:\n{open(log).read()[-3000:]}")


class Pod:
    """A container's environment as the cluster would give it, rewritten for this machine:
    Secret files in a temporary folder, listeners and URLs on free loopback ports, /data in a
    temporary folder."""

    def __init__(self, docs, tmp, secret_values, ports):
        self.config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
        self.tmp, self.secret_values, self.ports = tmp, secret_values, ports

    def env(self, container, volumes):
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        env = {"PATH": os.environ["PATH"]}
        if container.get("envFrom"):
            env.update(self.config)
        for e in container.get("env", []):
            if "valueFrom" in e:
                fail(f"{container['name']}: {e['name']} comes from valueFrom: give it in the ConfigMap or as a Secret file")
            env[e["name"]] = e["value"]
        for k, v in list(env.items()):
            if v.startswith("/run/secrets/"):
                folder, key = os.path.dirname(v), os.path.basename(v)
                volume = volumes.get(mounts.get(folder))
                if volume is None or "secret" not in volume:
                    fail(f"{container['name']}: {k} points at {folder}, which is no Secret volume")
                items = volume["secret"].get("items")
                if items is not None and key not in [i["path"] for i in items]:
                    fail(f"{container['name']}: {k} names {key}, which the volume does not project")
                path = os.path.join(self.tmp, "secrets", volume["secret"]["secretName"], key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(self.secret_values[(volume["secret"]["secretName"], key)])
                env[k] = path
            elif "/data/" in v and v.startswith("sqlite://"):
                env[k] = v.replace("/data/", os.path.join(self.tmp, "data") + "/")
        for k, port in self.ports.items():
            if k in env:
                env[k] = f"127.0.0.1:{port}"
        env["AUTH_SERVER_URL"] = f"http://127.0.0.1:{self.ports['AUTH_LISTEN']}"
        env["AUTH_ISSUER"] = env["TOKEN_ISSUER"] = env["AUTH_SERVER_URL"]
        return env


def check_env_names(docs, known):
    for d in docs:
        if d["kind"] not in ("Deployment", "Job"):
            continue
        spec = d["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            binary = "auth-server" if "auth-server" in c["image"] else "rooms-api"
            # A container's own env: known to its binary. The ConfigMap serves both: each name
            # known to one of the two.
            unknown = {e["name"] for e in c.get("env", [])} - known[binary]
            if c.get("envFrom"):
                unknown |= set(next(x for x in docs if x["kind"] == "ConfigMap")["data"]) - known["both"]
            if unknown:
                fail(f"{d['kind']} {d['metadata']['name']}/{c['name']}: unknown settings {sorted(unknown)}")


def run_overlay(overlay, docs, known):
    check_env_names(docs, known)
    tmp = tempfile.mkdtemp()
    os.makedirs(os.path.join(tmp, "data"))
    suffix = secrets.token_hex(4)
    if overlay == "fleet":
        auth_db, rooms_db = f"kube_auth_{suffix}", f"kube_rooms_{suffix}"
        psql(f"create database {auth_db}")
        psql(f"create database {rooms_db}")
        base = PG_ADMIN.rsplit("/", 1)[0]
        auth_url, rooms_url = f"{base}/{auth_db}", f"{base}/{rooms_db}"
    else:
        auth_url = rooms_url = "unused"
    values = {("auth-server-secrets", "database-url"): auth_url,
              ("auth-server-secrets", "key-encryption-key"): base64.b64encode(os.urandom(32)).decode(),
              ("rooms-api-secrets", "database-url"): rooms_url,
              ("rooms-api-secrets", "client-secret"): "replaced-below"}
    ports = {"AUTH_LISTEN": free_port(), "AUTH_METRICS_LISTEN": free_port(), "AUTH_ADMIN_LISTEN": free_port(),
             "ROOMS_LISTEN": free_port(), "ROOMS_METRICS_LISTEN": free_port()}
    pod = Pod(docs, tmp, values, ports)
    procs = []
    try:
        by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
        job = by_name.get(("Job", "migrate"))
        if job:
            spec = job["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in spec["volumes"]}
            for c in spec["initContainers"] + spec["containers"]:
                binary = os.path.join(BIN, "auth-server" if "auth-server" in c["image"] else "rooms-api")
                out = subprocess.run([binary, *c["args"]], env=pod.env(c, volumes), capture_output=True, text=True)
                if out.returncode != 0:
                    fail(f"{overlay}: migrate Job container {c['name']} failed:\n{out.stderr[-2000:]}")
        elif overlay == "fleet":
            fail("fleet: the migrate Job is missing")

        def start(name, extra=None):
            d = by_name[("Deployment", name)]
            spec = d["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in spec["volumes"]}
            c = spec["containers"][0]
            env = pod.env(c, volumes)
            env.update(extra or {})
            log = os.path.join(tmp, f"{name}.log")
            p = subprocess.Popen([os.path.join(BIN, name), *c["args"]], env=env,
                                 stdout=subprocess.DEVNULL, stderr=open(log, "w"))
            procs.append(p)
            port = ports["AUTH_LISTEN" if name == "auth-server" else "ROOMS_LISTEN"]
            ready(f"http://127.0.0.1:{port}", p, log)
            return env

        auth_env = start("auth-server")
        # The rooms API's own application, made with the auth-server's environment, as the README says.
        cli = subprocess.run([os.path.join(BIN, "auth-server"), "app", "create", "--name", "rooms-api",
                              "--scope", "tokens:revocations", "--scope", "users:resolve", "--json"],
                             env=auth_env, capture_output=True, text=True)
        if cli.returncode != 0:
            fail(f"{overlay}: app create failed:\n{cli.stderr}")
        app = json.loads(cli.stdout)
        values[("rooms-api-secrets", "client-secret")] = app["client_secret"]
        start("rooms-api", {"REVOCATION_CLIENT_ID": app["client_id"]})
        ran = "the migrate Job ran and " if job else ""
        print(f"kube-check: {overlay}: {ran}both servers answered /readyz with the manifests' environment")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if overlay == "fleet":
            for db in (f"kube_auth_{suffix}", f"kube_rooms_{suffix}"):
                subprocess.run(["psql", PG_ADMIN, "-qc", f"drop database if exists {db} with (force)"],
                               capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    bin_dir = tools()
    skip = justified()
    known = {"auth-server": known_env(os.path.join(BIN, "auth-server")),
             "rooms-api": known_env(os.path.join(BIN, "rooms-api"))}
    known["both"] = known["auth-server"] | known["rooms-api"]
    for overlay in OVERLAYS:
        text = render(overlay)
        path = os.path.join(tempfile.mkdtemp(), f"{overlay}.yaml")
        with open(path, "w") as f:
            f.write(text)
        v = subprocess.run([os.path.join(bin_dir, "kubernetes-validate"), "--strict", "--quiet", path],
                           capture_output=True, text=True)
        if v.returncode != 0:
            fail(f"{overlay}: schema validation failed:\n{v.stdout}{v.stderr}")
        passed, failed = lint(bin_dir, path, skip)
        if failed:
            fail(f"{overlay}: checkov checks failed that the README does not justify:\n  " + "\n  ".join(failed))
        print(f"kube-check: {overlay}: rendered, valid against the API schema, checkov {passed} passed "
              f"(justified in the README and skipped: {', '.join(skip) or 'none'})")
        run_overlay(overlay, documents(bin_dir, text), known)


if __name__ == "__main__":
    main()
