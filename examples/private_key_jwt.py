# private_key_jwt client authentication (RFC 7523 §2.2) with authlib and its defaults: each
# request signs a new assertion (valid for an hour, accepted because its iat is recent). Tell
# authlib the token endpoint: the assertion's `aud` is then the token endpoint URL wherever it
# is posted (introspection and revocation accept the same assertion; their own URLs are not
# audiences).
# Needs: pip install authlib requests
import json, os
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey

AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:8081")
ROOMS_URL = os.environ.get("ROOMS_URL", "http://127.0.0.1:8082")
CLIENT_ID = json.load(open("data/integrator-app.json"))["client_id"]
TOKEN_URL = f"{AUTH_URL}/oauth/token"
key = ECKey.import_key(open("data/integrator.pem", "rb").read())
auth = PrivateKeyJWT(TOKEN_URL, alg="ES256", headers={"kid": "2026-12"})
session = OAuth2Session(CLIENT_ID, key, token_endpoint_auth_method=auth,
                        revocation_endpoint_auth_method=auth)
token = session.fetch_token(TOKEN_URL, grant_type="client_credentials", scope="demo@example.com")
print(session.post(f"{ROOMS_URL}/external-api/v1.0/rooms", json={}).json())
session.revoke_token(f"{AUTH_URL}/oauth/revoke", token=token["access_token"])  # done with it
