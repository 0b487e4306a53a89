# google-auth's service-account flow (the JWT-bearer grant) acting for a user: the application's
# key as a service-account file. google-auth signs `aud` = Google's own token URL unless told
# otherwise, which this server refuses (an assertion for Google is not one for us): the one
# line to add is additional_claims={"aud": TOKEN_URL}.
# Needs: pip install google-auth requests
import json, os
import requests
from google.auth.transport.requests import Request
from google.oauth2 import service_account

AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:8081")
ROOMS_URL = os.environ.get("ROOMS_URL", "http://127.0.0.1:8082")
CLIENT_ID = json.load(open("data/integrator-app.json"))["client_id"]
TOKEN_URL = f"{AUTH_URL}/oauth/token"
info = {"client_email": CLIENT_ID, "token_uri": TOKEN_URL, "private_key_id": "rsa-2026-12",
        "private_key": open("data/integrator-rsa.pem").read()}
credentials = service_account.Credentials.from_service_account_info(
    info, scopes=["rooms:list", "rooms:create"], subject="demo@example.com",
    additional_claims={"aud": TOKEN_URL})
credentials.refresh(Request())
print(requests.get(f"{ROOMS_URL}/external-api/v1.0/rooms",
                   headers={"Authorization": f"Bearer {credentials.token}"}).json()["count"], "rooms")
