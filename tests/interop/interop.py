"""Interoperability: the auth-server driven by standard client code, not by our own.

docs/spec/auth-server.md §1a. Run by scripts/interop-test against a stack started by
scripts/dev. Two applications without a client secret are registered the ways an operator
would (the CLI with --jwks-file, the admin API with an inline JWKS), their key pairs made
with openssl, then:

- authlib's `PrivateKeyJWT` (RFC 7523 §2.2 client authentication) obtains a delegated token,
  which the rooms API accepts, and revokes it;
- a client that builds its own assertion with PyJWT uses the JWT-bearer grant (RFC 7523 §2.1)
  to act for a user with a subset of the application's scopes;
- authlib's `AssertionSession`, the service-account style client, does the same.

Environment: AUTH_URL, ROOMS_URL, ADMIN_URL, ADMIN_KEY, AUTH_BIN, AUTH_DATABASE_URL, WORK_DIR.
Exits non-zero when a check fails.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import jwt  # PyJWT
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import AssertionSession, OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc.jwk import ECKey, RSAKey

AUTH_URL = os.environ["AUTH_URL"]
ROOMS_URL = os.environ["ROOMS_URL"]
ADMIN_URL = os.environ["ADMIN_URL"]
ADMIN_KEY = os.environ["ADMIN_KEY"]
AUTH_BIN = os.environ["AUTH_BIN"]
WORK = os.environ["WORK_DIR"]
TOKEN_ENDPOINT = f"{AUTH_URL}/oauth/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
USER = "interop@example.com"
ALL_ROOMS = ["rooms:create", "rooms:list", "rooms:retrieve", "rooms:update", "rooms:delete"]


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
    r = requests.post(
        f"{ADMIN_URL}/admin/v1/applications",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": name, "scopes": scopes, "domains": ["example.com"], "jwks": jwks,
              "no_secret": True},
        timeout=10,
    )
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


def rooms(token, method="GET", path="", **kw):
    return requests.request(method, f"{ROOMS_URL}/external-api/v1.0/rooms{path}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10, **kw)


# ---------------------------------------------------------------------------------------------

rsa_pem = openssl_key("rsa", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
ec_pem = openssl_key("ec", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
subprocess.run([AUTH_BIN, "user", "create", "--email", USER], check=True, capture_output=True)
cli_app = register_with_cli("interop authlib", {"keys": [public_jwk(rsa_pem, "rsa-1")]}, ALL_ROOMS)
api_app = register_with_admin_api("interop jwt-bearer", {"keys": [public_jwk(ec_pem, "ec-1")]},
                                  ["rooms:list", "rooms:create"])


def test_registered_without_secret():
    assert cli_app.get("client_secret") in (None, ""), cli_app
    assert cli_app["token_endpoint_auth_method"] == "private_key_jwt", cli_app
    assert api_app["token_endpoint_auth_method"] == "private_key_jwt", api_app
    assert api_app["secrets"] == [], api_app


def test_metadata_announces_both():
    meta = requests.get(f"{AUTH_URL}/.well-known/oauth-authorization-server", timeout=10).json()
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"], meta
    assert JWT_BEARER in meta["grant_types_supported"], meta
    assert {"RS256", "ES256", "EdDSA", "PS256"} <= set(
        meta["token_endpoint_auth_signing_alg_values_supported"]), meta


def test_authlib_private_key_jwt():
    # Revocation and introspection authenticate the same way; not told the token endpoint, the
    # assertion's aud is the URL it is posted to.
    session = OAuth2Session(cli_app["client_id"], RSAKey.import_key(rsa_pem),
                            # authlib's defaults: assertions valid for an hour, accepted
                            # because their iat bounds them (CLIENT_ASSERTION_MAX_AGE_SECONDS).
                            token_endpoint_auth_method=PrivateKeyJWT(TOKEN_ENDPOINT),
                            revocation_endpoint_auth_method=PrivateKeyJWT())
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
    listed = rooms(first["access_token"])
    assert listed.status_code == 200, listed.text
    # Revocation with the same client authentication. RFC 7009 answers 200 whatever happened,
    # so the proof is the token refused afterwards: by the rooms API, once its revocation feed
    # poll (10 s) has brought the revocation over.
    assert rooms(second["access_token"]).status_code == 200
    r = session.revoke_token(f"{AUTH_URL}/oauth/revoke", token=second["access_token"])
    assert r.status_code == 200, (r.status_code, r.text)
    deadline = time.monotonic() + 25
    while rooms(second["access_token"]).status_code != 401:
        assert time.monotonic() < deadline, "the revoked token still works at the rooms API"
        time.sleep(0.5)
    assert rooms(first["access_token"]).status_code == 200, "only the revoked token dies"



def test_authlib_private_key_jwt_es256_naming_its_kid():
    # The README's form: an EC key, the kid in the header, an application with no secret at all,
    # and authlib's PrivateKeyJWT as it comes (its assertions are valid for an hour).
    session = OAuth2Session(api_app["client_id"], ECKey.import_key(ec_pem),
                            token_endpoint_auth_method=PrivateKeyJWT(
                                TOKEN_ENDPOINT, alg="ES256", headers={"kid": "ec-1"}))
    token = session.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials", scope=USER)
    assert set(token["scope"].split()) == {"rooms:list", "rooms:create"}, token
    assert rooms(token["access_token"]).status_code == 200


def test_authlib_far_future_assertion_is_refused_clearly():
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


def bearer_assertion(sub, **extra):
    now = int(time.time())
    claims = {"iss": api_app["client_id"], "sub": sub, "aud": TOKEN_ENDPOINT,
              "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()), **extra}
    return jwt.encode(claims, ec_pem, algorithm="ES256", headers={"kid": "ec-1"})


def test_self_built_jwt_bearer_grant():
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


def test_jwt_bearer_user_outside_allowlist():
    r = requests.post(TOKEN_ENDPOINT, data={"grant_type": JWT_BEARER,
                                            "assertion": bearer_assertion("eve@elsewhere.org")},
                      timeout=10)
    # After authentication the exchange is the client_credentials one: 403 (docs/spec/auth-server.md §1 step 7).
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "invalid_scope", r.text


def test_authlib_assertion_session():
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


def main():
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    failed = 0
    for name, test in tests:
        try:
            test()
            print(f"PASS {name}")
        except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    print(f"interop: {len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
