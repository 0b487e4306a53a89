"""Interoperability: the auth-server driven by standard client code, not by our own.

docs/spec/auth-server.md §1a. Run by scripts/interop-test against a stack started by
scripts/dev. Each flow below is one library used with its defaults (only the URLs, credentials
and keys given) and checked where it matters: a token the rooms API accepts, a revoked token the
rooms API refuses, not only the endpoint's 200. The libraries:

- Python: authlib (client_secret_basic and _post, private_key_jwt RS256 and ES256,
  introspection, revocation, AssertionSession for the JWT-bearer grant), requests-oauthlib's
  BackendApplicationClient, google-auth's service account with a subject, PyJWT-built assertions;
- Node.js: openid-client 6 and jose (tests/interop/node/checks.mjs).

Then every README example under examples/ runs as written, in the README's order, in a folder
whose data/ is the stack's. The matrix (library x flow) is printed and must equal the README's
copy between its interop-matrix markers (INTEROP_WRITE_README=1 rewrites that copy).

Environment: AUTH_URL, ROOMS_URL, ADMIN_URL, ADMIN_KEY, AUTH_BIN, AUTH_DATABASE_URL, WORK_DIR,
DATA_DIR (the stack's data folder). Exits non-zero when a check fails.
"""

import json
import os
import pathlib
import subprocess
import sys
import time
import uuid

import authlib
import google.auth
import jwt  # PyJWT
import requests
import requests_oauthlib
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import AssertionSession, OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import service_account
from joserfc.jwk import ECKey, RSAKey
from oauthlib.oauth2 import BackendApplicationClient

AUTH_URL = os.environ["AUTH_URL"]
ROOMS_URL = os.environ["ROOMS_URL"]
ADMIN_URL = os.environ["ADMIN_URL"]
ADMIN_KEY = os.environ["ADMIN_KEY"]
AUTH_BIN = os.environ["AUTH_BIN"]
WORK = os.environ["WORK_DIR"]
DATA = os.environ["DATA_DIR"]
ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKEN_ENDPOINT = f"{AUTH_URL}/oauth/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
USER = "interop@example.com"
ALL_ROOMS = ["rooms:create", "rooms:list", "rooms:retrieve", "rooms:update", "rooms:delete"]
AUTHLIB = f"authlib {authlib.__version__}"
PYJWT = f"PyJWT {jwt.__version__}"
GOOGLE = f"google-auth {google.auth.__version__}"
OAUTHLIB = f"requests-oauthlib {requests_oauthlib.__version__}"

# (library, flow, function), in the matrix's order.
FLOWS = []


def flow(library, name):
    """Registers a check as one row of the matrix."""
    def register(fn):
        FLOWS.append((library, name, fn))
        return fn
    return register


def openssl_key(name, *args):
    """A private key in PEM made by openssl, as the integrator guide does it."""
    path = os.path.join(WORK, f"{name}.pem")
    subprocess.run(["openssl", "genpkey", *args, "-out", path], check=True, capture_output=True)
    with open(path, "rb") as f:
        return f.read()


def public_jwk(pem, kid):
    """The public half of a PEM private key as a JWK with a kid."""
    key = load_pem_private_key(pem, password=None)
    algorithm = jwt.get_algorithm_by_name("ES256" if "EC" in type(key).__name__ else "RS256")
    jwk = algorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=kid, use="sig")
    return jwk


def claims_of(token):
    """The payload and header of a JWT, unverified (the rooms API verifies it for real)."""
    return jwt.decode(token, options={"verify_signature": False}), jwt.get_unverified_header(token)


def register_with_cli(name, jwks, scopes):
    path = os.path.join(WORK, f"{name}.jwks.json")
    with open(path, "w") as f:
        json.dump(jwks, f)
    args = [AUTH_BIN, "app", "create", "--name", name, "--domain", "example.com",
            "--jwks-file", path, "--no-secret", "--json"]
    for s in scopes:
        args += ["--scope", s]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def register_with_admin_api(name, jwks, scopes):
    body = {"name": name, "scopes": scopes, "domains": ["example.com"]}
    if jwks is not None:
        body.update(jwks=jwks, no_secret=True)
    r = requests.post(
        f"{ADMIN_URL}/admin/v1/applications",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        json=body,
        timeout=10,
    )
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


def rooms(token, method="GET", path="", **kw):
    return requests.request(method, f"{ROOMS_URL}/external-api/v1.0/rooms{path}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10, **kw)


def refused_at_rooms_api(token, survivor):
    """RFC 7009 answers 200 whatever happened: the proof of a revocation is the rooms API
    refusing the token, once its revocation feed poll (10 s) has brought it over."""
    deadline = time.monotonic() + 25
    while rooms(token).status_code != 401:
        assert time.monotonic() < deadline, "the revoked token still works at the rooms API"
        time.sleep(0.5)
    assert rooms(survivor).status_code == 200, "only the revoked token dies"


# ---------------------------------------------------------------------------------------------

rsa_pem = openssl_key("rsa", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
ec_pem = openssl_key("ec", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
subprocess.run([AUTH_BIN, "user", "create", "--email", USER], check=True, capture_output=True)
cli_app = register_with_cli("interop authlib", {"keys": [public_jwk(rsa_pem, "rsa-1")]},
                            ALL_ROOMS + ["tokens:introspect"])
api_app = register_with_admin_api("interop jwt-bearer", {"keys": [public_jwk(ec_pem, "ec-1")]},
                                  ["rooms:list", "rooms:create"])
secret_app = register_with_admin_api("interop secrets", None, ALL_ROOMS + ["tokens:introspect"])
google_app = register_with_admin_api("interop google-auth",
                                     {"keys": [public_jwk(rsa_pem, "google-1")]}, ["rooms:list"])


def setup_checks():
    """What the flows rely on: the registrations, and the metadata a library discovers."""
    assert cli_app.get("client_secret") in (None, ""), cli_app
    assert cli_app["token_endpoint_auth_method"] == "private_key_jwt", cli_app
    assert api_app["token_endpoint_auth_method"] == "private_key_jwt", api_app
    assert api_app["secrets"] == [], api_app
    meta = requests.get(f"{AUTH_URL}/.well-known/oauth-authorization-server", timeout=10).json()
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"], meta
    assert JWT_BEARER in meta["grant_types_supported"], meta
    assert {"RS256", "ES256", "EdDSA", "PS256"} <= set(
        meta["token_endpoint_auth_signing_alg_values_supported"]), meta


def secret_session(method):
    return OAuth2Session(secret_app["client_id"], secret_app["client_secret"],
                         token_endpoint_auth_method=method)


@flow(AUTHLIB, "client_credentials, client_secret_basic (its default)")
def authlib_secret_basic():
    # No method named: authlib's default for a client with a secret.
    session = OAuth2Session(secret_app["client_id"], secret_app["client_secret"])
    token = session.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials", scope=USER)
    assert rooms(token["access_token"]).status_code == 200


@flow(AUTHLIB, "client_credentials, client_secret_post")
def authlib_secret_post():
    token = secret_session("client_secret_post").fetch_token(
        TOKEN_ENDPOINT, grant_type="client_credentials", scope=USER)
    assert rooms(token["access_token"]).status_code == 200


@flow(AUTHLIB, "client_credentials, private_key_jwt RS256; revocation")
def authlib_private_key_jwt():
    # One PrivateKeyJWT, told the token endpoint, for the token and the revocation endpoints
    # alike: the assertion's aud is the token endpoint URL wherever it is posted (authlib
    # signs for the URL it posts to only when not told; those URLs are not audiences here).
    auth = PrivateKeyJWT(TOKEN_ENDPOINT)
    # authlib's defaults otherwise: assertions valid for an hour, accepted because their iat
    # bounds them (CLIENT_ASSERTION_MAX_AGE_SECONDS).
    session = OAuth2Session(cli_app["client_id"], RSAKey.import_key(rsa_pem),
                            token_endpoint_auth_method=auth, revocation_endpoint_auth_method=auth)
    first = session.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials", scope=USER)
    # A second call signs a new assertion (new jti): not a replay.
    second = session.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials", scope=USER)
    assert first["access_token"] != second["access_token"]
    assert first["token_type"].lower() == "bearer"
    payload, header = claims_of(first["access_token"])
    assert header["typ"] == "at+jwt", header
    assert payload["act"]["sub"] == cli_app["client_id"], payload
    assert set(first["scope"].split()) == set(ALL_ROOMS), first
    created = rooms(first["access_token"], "POST", json={})
    assert created.status_code == 201, created.text
    assert rooms(second["access_token"]).status_code == 200
    r = session.revoke_token(f"{AUTH_URL}/oauth/revoke", token=second["access_token"])
    assert r.status_code == 200, (r.status_code, r.text)
    refused_at_rooms_api(second["access_token"], survivor=first["access_token"])


@flow(AUTHLIB, "client_credentials, private_key_jwt ES256 naming its kid")
def authlib_private_key_jwt_es256():
    # The README's form: an EC key, the kid in the header, an application with no secret.
    session = OAuth2Session(api_app["client_id"], ECKey.import_key(ec_pem),
                            token_endpoint_auth_method=PrivateKeyJWT(
                                TOKEN_ENDPOINT, alg="ES256", headers={"kid": "ec-1"}))
    token = session.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials", scope=USER)
    assert set(token["scope"].split()) == {"rooms:list", "rooms:create"}, token
    assert rooms(token["access_token"]).status_code == 200


@flow(AUTHLIB, "introspection, private_key_jwt")
def authlib_introspection():
    session = OAuth2Session(cli_app["client_id"], RSAKey.import_key(rsa_pem),
                            token_endpoint_auth_method=PrivateKeyJWT(TOKEN_ENDPOINT))
    token = session.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials", scope=USER)
    r = session.introspect_token(f"{AUTH_URL}/oauth/introspect", token=token["access_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["active"] is True and body["username"] == USER, body
    # Posted with an assertion whose aud is the introspection URL (what authlib signs when
    # not told the token endpoint): refused, saying why.
    r = session.introspect_token(f"{AUTH_URL}/oauth/introspect", token=token["access_token"],
                                 auth=session.client_auth(PrivateKeyJWT()))
    assert r.status_code == 401, r.text
    assert "aud must be" in r.json()["error_description"], r.text


@flow(AUTHLIB, "a two-day private_key_jwt assertion refused clearly")
def authlib_far_future_assertion():
    # Past the sane maximum (a day), whatever its iat: refused, saying which claim.
    class TwoDays(PrivateKeyJWT):
        def sign(self, auth, token_endpoint):
            return private_key_jwt_sign(auth.client_secret, client_id=auth.client_id,
                                        token_endpoint=token_endpoint, alg=self.alg,
                                        header=self.headers, expires_in=2 * 86400)

    session = OAuth2Session(cli_app["client_id"], RSAKey.import_key(rsa_pem),
                            token_endpoint_auth_method=TwoDays(TOKEN_ENDPOINT))
    try:
        session.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials", scope=USER)
    except OAuthError as e:
        assert e.error == "invalid_client", e
        assert "exp" in (e.description or ""), e.description
    else:
        raise AssertionError("a two-day client assertion was accepted")


@flow(AUTHLIB, "JWT-bearer grant, AssertionSession")
def authlib_assertion_session():
    session = AssertionSession(
        grant_type=JWT_BEARER,
        token_endpoint=TOKEN_ENDPOINT,
        issuer=api_app["client_id"],
        subject=USER,
        audience=TOKEN_ENDPOINT,
        key=ECKey.import_key(ec_pem),
        header={"alg": "ES256", "kid": "ec-1"},
        scope="rooms:list rooms:create",
    )
    token = session.refresh_token()
    assert set(token["scope"].split()) == {"rooms:list", "rooms:create"}, token
    created = rooms(token["access_token"], "POST", json={})
    assert created.status_code == 201, created.text


@flow(OAUTHLIB, "client_credentials, BackendApplicationClient")
def requests_oauthlib_backend_client():
    from requests_oauthlib import OAuth2Session as OAuthlibSession
    # The granted scope (rooms:*) differs from the requested e-mail, by design; the stack is
    # plain http on loopback.
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    client = BackendApplicationClient(client_id=secret_app["client_id"], scope=[USER])
    session = OAuthlibSession(client=client)
    token = session.fetch_token(TOKEN_ENDPOINT, client_id=secret_app["client_id"],
                                client_secret=secret_app["client_secret"])
    assert set(ALL_ROOMS) <= set(token["scope"]), token
    created = session.post(f"{ROOMS_URL}/external-api/v1.0/rooms", timeout=10)
    assert created.status_code == 201, created.text


def google_credentials(**extra):
    info = {"client_email": google_app["client_id"], "token_uri": TOKEN_ENDPOINT,
            "private_key_id": "google-1", "private_key": rsa_pem.decode()}
    return service_account.Credentials.from_service_account_info(
        info, scopes=["rooms:list"], subject=USER, **extra)


@flow(GOOGLE, "JWT-bearer grant, service account with subject (aud given)")
def google_service_account_with_audience():
    credentials = google_credentials(additional_claims={"aud": TOKEN_ENDPOINT})
    credentials.refresh(GoogleRequest())
    payload, _ = claims_of(credentials.token)
    assert payload["act"]["sub"] == google_app["client_id"], payload
    assert payload["scope"] == "rooms:list", payload
    assert rooms(credentials.token).status_code == 200


@flow(GOOGLE, "without the aud line: refused, naming aud")
def google_service_account_default_audience():
    # google-auth signs aud = Google's own token URL: an assertion for Google is not one for
    # us (the audience-injection class), so it is refused, and the answer says why.
    try:
        google_credentials().refresh(GoogleRequest())
    except RefreshError as e:
        assert "aud must be" in str(e), e
    else:
        raise AssertionError("an assertion for Google's token URL was accepted")


def bearer_assertion(sub, **extra):
    now = int(time.time())
    claims = {"iss": api_app["client_id"], "sub": sub, "aud": TOKEN_ENDPOINT,
              "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()), **extra}
    return jwt.encode(claims, ec_pem, algorithm="ES256", headers={"kid": "ec-1"})


@flow(PYJWT, "JWT-bearer grant, down-scoped; a replay refused")
def pyjwt_bearer_grant():
    assertion = bearer_assertion(USER, scope="rooms:list")
    r = requests.post(TOKEN_ENDPOINT, data={"grant_type": JWT_BEARER, "assertion": assertion},
                      timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "rooms:list", body
    payload, _ = claims_of(body["access_token"])
    assert payload["act"]["sub"] == api_app["client_id"], payload
    assert payload["scope"] == "rooms:list", payload
    # Down-scoped: listing works, creating is refused by the rooms API.
    assert rooms(body["access_token"]).status_code == 200
    refused = rooms(body["access_token"], "POST", json={})
    assert refused.status_code == 403, refused.text
    assert "insufficient_scope" in refused.headers.get("WWW-Authenticate", ""), refused.headers
    # The same assertion again is a replay.
    again = requests.post(TOKEN_ENDPOINT, data={"grant_type": JWT_BEARER, "assertion": assertion},
                          timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text


@flow(PYJWT, "JWT-bearer grant for a user outside the allowlist refused")
def pyjwt_user_outside_allowlist():
    r = requests.post(TOKEN_ENDPOINT, data={"grant_type": JWT_BEARER,
                                            "assertion": bearer_assertion("eve@elsewhere.org")},
                      timeout=10)
    # After authentication the exchange is the client_credentials one: 403 (docs/spec/auth-server.md §1 step 7).
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "invalid_scope", r.text


def node_flows():
    """The Node.js rows: tests/interop/node/checks.mjs, one JSON line per flow."""
    key_path = os.path.join(WORK, "ec.pem")
    env = {**os.environ, "SECRET_CLIENT_ID": secret_app["client_id"],
           "SECRET_CLIENT_SECRET": secret_app["client_secret"],
           "KEY_CLIENT_ID": api_app["client_id"], "KEY_PEM": key_path, "KEY_KID": "ec-1",
           "USER": USER}
    out = subprocess.run(["node", str(ROOT / "tests/interop/node/checks.mjs")], env=env,
                         capture_output=True, text=True, timeout=120)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not rows:
        rows.append({"library": "Node.js", "flow": "tests/interop/node/checks.mjs", "ok": False,
                     "detail": f"exit {out.returncode}: {out.stderr.strip()[-500:]}"})
    return rows


# The README's examples, in the README's order: (file, what its output must contain).
EXAMPLES = [
    ("examples/first-room.sh", '"slug":'),
    ("examples/share-room.sh", '"role":"member"'),
    ("examples/token.sh", '"token_type":"Bearer"'),
    ("examples/inspect-token.sh", '"keys"'),
    ("examples/make-key.sh", ""),
    ("examples/register-key.sh", '"private_key_jwt"'),
    ("examples/jwt_bearer.py", "rooms:list"),
    ("examples/private_key_jwt.py", "'slug':"),
    ("examples/requests_oauthlib_client.py", "'slug':"),
    ("examples/admin-api.sh", '"resource":"application"'),
    ("examples/dpop_client.py", "401 invalid_token"),
    ("examples/google_service_account.py", " rooms"),
    ("examples/node/openid_client.mjs", "verified: acting for"),
]


def run_examples():
    """Each README example as written, from a folder whose data/ is the stack's (the README
    runs them from the repository's root, where scripts/dev keeps data/)."""
    here = os.path.join(WORK, "readme")
    os.makedirs(here, exist_ok=True)
    link = os.path.join(here, "data")
    if not os.path.exists(link):
        os.symlink(DATA, link)
    demo = json.load(open(os.path.join(DATA, "demo-app.json")))
    token = requests.post(TOKEN_ENDPOINT, auth=(demo["client_id"], demo["client_secret"]),
                          data={"grant_type": "client_credentials", "scope": "demo@example.com"},
                          timeout=10).json()["access_token"]
    env = {**os.environ, "AUTH_SERVER": AUTH_BIN, "TOKEN": token}
    failed = 0
    for name, expected in EXAMPLES:
        path = ROOT / name
        command = {".sh": ["bash", "-e"], ".py": [sys.executable], ".mjs": ["node"]}[path.suffix]
        out = subprocess.run(command + [str(path)], cwd=here, env=env, capture_output=True,
                             text=True, timeout=120)
        ok = out.returncode == 0 and expected in out.stdout
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} README example {name}")
        if not ok:
            print(f"  exit {out.returncode}; stdout: {out.stdout[-400:]!r}; stderr: {out.stderr[-600:]!r}")
    return failed


MATRIX_START = "<!-- interop-matrix:start (scripts/interop-test writes it) -->"
MATRIX_END = "<!-- interop-matrix:end -->"


def matrix(rows):
    lines = ["| library | flow | result |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['library']} | {r['flow']} | {'pass' if r['ok'] else 'FAIL'} |")
    return "\n".join(lines)


def check_readme(table):
    """The README shows the matrix this run printed, or the run fails."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(MATRIX_START) + len(MATRIX_START), text.index(MATRIX_END)
    if text[start:end].strip() == table:
        return True
    if os.environ.get("INTEROP_WRITE_README") == "1":
        readme.write_text(text[:start] + "\n" + table + "\n" + text[end:])
        print("interop: README.md's matrix rewritten")
        return True
    print("FAIL README.md's interop matrix differs from this run's (INTEROP_WRITE_README=1 "
          "scripts/interop-test rewrites it)")
    return False


def main():
    with open(os.path.join(WORK, "ec.pem"), "wb") as f:
        f.write(ec_pem)
    setup_checks()
    rows = []
    for library, name, fn in FLOWS:
        try:
            fn()
            rows.append({"library": library, "flow": name, "ok": True, "detail": ""})
        except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
            rows.append({"library": library, "flow": name, "ok": False,
                         "detail": f"{type(e).__name__}: {e}"})
    rows += node_flows()
    for r in rows:
        print(f"{'PASS' if r['ok'] else 'FAIL'} {r['library']}: {r['flow']}"
              + (f": {r['detail']}" if not r["ok"] else ""))
    failed = sum(not r["ok"] for r in rows)
    failed += run_examples()
    table = matrix(rows)
    print(table)
    failed += not check_readme(table)
    passed = len(rows) + len(EXAMPLES) + 1 - failed
    print(f"interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
