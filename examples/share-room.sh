# Share a room by e-mail: demo@example.com makes a room and gives colleague@example.com the
# member role (rooms:grant-access); the colleague's own token, through the same application,
# then lists it with that role. The grantee must be in the application's e-mail domains.
AUTH_URL=${AUTH_URL:-http://127.0.0.1:8081} ROOMS_URL=${ROOMS_URL:-http://127.0.0.1:8082}
CLIENT_ID=$(python3 -c 'import json; print(json.load(open("data/demo-app.json"))["client_id"])')
CLIENT_SECRET=$(python3 -c 'import json; print(json.load(open("data/demo-app.json"))["client_secret"])')
token() { curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials -d "scope=$1" \
          "$AUTH_URL/oauth/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'; }
OWNER=$(token demo@example.com) COLLEAGUE=$(token colleague@example.com)
ROOM=$(curl -s -X POST -H "Authorization: Bearer $OWNER" "$ROOMS_URL/external-api/v1.0/rooms" \
       | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
curl -s -H "Authorization: Bearer $OWNER" -H 'content-type: application/json' \
     -d '{"email": "colleague@example.com", "role": "member"}' \
     "$ROOMS_URL/external-api/v1.0/rooms/$ROOM/grant-access/"
# {"email":"colleague@example.com","role":"member","created":true,"provisional_user_created":false}
echo
curl -s -H "Authorization: Bearer $COLLEAGUE" "$ROOMS_URL/external-api/v1.0/rooms?page_size=1"
# {"count":1,"next":null,"previous":null,"results":[{"id":"…",…,"role":"member",…}]}
