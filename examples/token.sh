# The token endpoint alone (client_secret_basic), then the upstream-compatible JSON form.
AUTH_URL=${AUTH_URL:-http://127.0.0.1:8081}
CLIENT_ID=$(python3 -c 'import json; print(json.load(open("data/demo-app.json"))["client_id"])')
CLIENT_SECRET=$(python3 -c 'import json; print(json.load(open("data/demo-app.json"))["client_secret"])')
curl -s -u "$CLIENT_ID:$CLIENT_SECRET" \
     -d grant_type=client_credentials -d scope=demo@example.com \
     "$AUTH_URL/oauth/token"
# {"access_token":"eyJ…","token_type":"Bearer","expires_in":3600,"scope":"rooms:create rooms:list rooms:retrieve rooms:update rooms:delete"}
echo
curl -s -H 'content-type: application/json' \
     -d '{"grant_type":"client_credentials","client_id":"'"$CLIENT_ID"'","client_secret":"'"$CLIENT_SECRET"'","scope":"demo@example.com"}' \
     "$AUTH_URL/external-api/v1.0/application/token"
