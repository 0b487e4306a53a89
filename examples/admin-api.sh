# The admin API with an admin key (scripts/dev made one: data/admin-key.json; otherwise
# `auth-server admin-key create --name ops-portal` shows one once, and the server keeps only
# its digest). Applications and users are made, changed and audited as with the CLI.
ADMIN=${ADMIN_URL:-http://127.0.0.1:9091}/admin/v1
KEY=$(python3 -c 'import json; print(json.load(open("data/admin-key.json"))["key"])')
curl -s -H "Authorization: Bearer $KEY" -H 'content-type: application/json' $ADMIN/applications \
     -d '{"name": "Acme Calendar", "scopes": ["rooms:create", "rooms:list"], "domains": ["acme.com"]}' \
     > data/acme-app.json   # 201 with client_id and client_secret (shown only this once)
CLIENT_ID=$(python3 -c 'import json; print(json.load(open("data/acme-app.json"))["client_id"])')
curl -s -H "Authorization: Bearer $KEY" "$ADMIN/applications?name=acme&limit=20"    # cursor-paged
curl -s -X PATCH -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
     $ADMIN/applications/$CLIENT_ID -d '{"scopes": ["rooms:create"], "token_ttl_seconds": 600}'
curl -s -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
     $ADMIN/applications/$CLIENT_ID/rotate-secret -d '{"grace_seconds": 86400}'
curl -s -H "Authorization: Bearer $KEY" -H 'content-type: application/json' $ADMIN/users -d '{"email": "jane@acme.com"}'
curl -s -H "Authorization: Bearer $KEY" "$ADMIN/audit-events?resource=application&since=2026-12-01T00:00:00Z"
