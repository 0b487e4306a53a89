# A token's claims (sub = the user's id, act.sub = your client_id), its header (kid), and the
# JWKS that holds that kid. TOKEN is one from first-room.sh or token.sh.
AUTH_URL=${AUTH_URL:-http://127.0.0.1:8081}
b64url() { s=$(tr '_-' '/+'); while [ $((${#s} % 4)) != 0 ]; do s="$s="; done; printf '%s' "$s" | base64 -d; }
echo "$TOKEN" | cut -d. -f2 | b64url; echo
echo "$TOKEN" | cut -d. -f1 | b64url; echo
curl -s "$AUTH_URL/.well-known/jwks.json"
