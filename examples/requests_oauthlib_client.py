# The client_credentials exchange with requests-oauthlib's BackendApplicationClient and the
# demo application's secret (data/demo-app.json).
# Needs: pip install requests-oauthlib
import json, os
os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"  # granted scope (rooms:*) differs from the requested e-mail, by design
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the local stack is plain http; never in production
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:8081")
ROOMS_URL = os.environ.get("ROOMS_URL", "http://127.0.0.1:8082")
app = json.load(open("data/demo-app.json"))
client = BackendApplicationClient(client_id=app["client_id"], scope=["demo@example.com"])
session = OAuth2Session(client=client)
session.fetch_token(f"{AUTH_URL}/oauth/token", client_id=app["client_id"],
                    client_secret=app["client_secret"])
print(session.post(f"{ROOMS_URL}/external-api/v1.0/rooms").json())
