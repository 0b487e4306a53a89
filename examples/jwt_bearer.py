# The JWT-bearer grant (RFC 7523 §2.1): an assertion signed with data/integrator.pem names the
# user in `sub` and asks for a subset of the application's scopes.
# Needs: pip install "pyjwt[crypto]" requests
import json, os, time, uuid
import jwt, requests

AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:8081")
ROOMS_URL = os.environ.get("ROOMS_URL", "http://127.0.0.1:8082")
CLIENT_ID = json.load(open("data/integrator-app.json"))["client_id"]
TOKEN_URL = f"{AUTH_URL}/oauth/token"
now = int(time.time())
assertion = jwt.encode(
    {"iss": CLIENT_ID, "sub": "demo@example.com", "aud": TOKEN_URL, "iat": now, "exp": now + 300,
     "jti": str(uuid.uuid4()), "scope": "rooms:list"},
    open("data/integrator.pem", "rb").read(), algorithm="ES256", headers={"kid": "2026-12"})
token = requests.post(TOKEN_URL, data={
    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}).json()
print(token["scope"])  # rooms:list
rooms = requests.get(f"{ROOMS_URL}/external-api/v1.0/rooms",
                     headers={"Authorization": f"Bearer {token['access_token']}"}).json()
print(rooms["count"], "rooms")
