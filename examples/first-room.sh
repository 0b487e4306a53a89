# A first token for demo@example.com, and a first room with it (the demo application that
# ./scripts/dev registers; its credentials are in data/demo-app.json).
AUTH_URL=${AUTH_URL:-http://127.0.0.1:8081} ROOMS_URL=${ROOMS_URL:-http://127.0.0.1:8082}
CLIENT_ID=$(python3 -c 'import json; print(json.load(open("data/demo-app.json"))["client_id"])')
CLIENT_SECRET=$(python3 -c 'import json; print(json.load(open("data/demo-app.json"))["client_secret"])')
TOKEN=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials -d scope=demo@example.com \
        "$AUTH_URL/oauth/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
curl -s -X POST -H "Authorization: Bearer $TOKEN" "$ROOMS_URL/external-api/v1.0/rooms"
# {"id":"…","name":"abc-defg-hij","slug":"abc-defg-hij","access_level":"trusted","configuration":{},
#  "created_at":"…","role":"owner","url":"https://meet.example.com/abc-defg-hij"}
