# A DPoP-bound token (RFC 9449) from the metadata alone, with PyJWT and cryptography: the token
# is bound to a key pair this client holds, and each request to the rooms API carries a fresh
# proof signed with it, so a copy of the token alone is useless. The demo application's secret
# authenticates it (data/demo-app.json); private_key_jwt works the same way.
# Needs: pip install "pyjwt[crypto]" requests
import base64, hashlib, json, os, time, uuid
import jwt, requests
from cryptography.hazmat.primitives.asymmetric import ec

AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:8081")
ROOMS_URL = os.environ.get("ROOMS_URL", "http://127.0.0.1:8082")
meta = requests.get(f"{AUTH_URL}/.well-known/oauth-authorization-server").json()
assert "ES256" in meta["dpop_signing_alg_values_supported"]
key = ec.generate_private_key(ec.SECP256R1())  # keep it as long as the token
public_jwk = jwt.get_algorithm_by_name("ES256").to_jwk(key.public_key(), as_dict=True)


def proof(method, url, access_token=None):
    """A proof for one request: its method and URL (no query), and the token's hash."""
    claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
    if access_token:
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": public_jwk})


app = json.load(open("data/demo-app.json"))
token = requests.post(meta["token_endpoint"], auth=(app["client_id"], app["client_secret"]),
                      data={"grant_type": "client_credentials", "scope": "demo@example.com"},
                      headers={"DPoP": proof("POST", meta["token_endpoint"])}).json()
print(token["token_type"])  # DPoP
access_token = token["access_token"]
rooms_url = f"{ROOMS_URL}/external-api/v1.0/rooms"
room = requests.post(rooms_url, json={}, headers={"Authorization": f"DPoP {access_token}",
                                                  "DPoP": proof("POST", rooms_url, access_token)})
print(room.status_code, room.json()["slug"])  # 201 abc-defg-hij
stolen = requests.get(rooms_url, headers={"Authorization": f"Bearer {access_token}"})
print(stolen.status_code, stolen.json()["error"])  # 401 invalid_token: the token alone is useless
