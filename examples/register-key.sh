# The operator registers the public half, with no secret at all; the answer (client_id) is kept
# in data/integrator-app.json for the examples that follow.
AUTH_SERVER=${AUTH_SERVER:-target/release/auth-server}
"$AUTH_SERVER" app create --name "Calendar" --scope rooms:create --scope rooms:list \
  --domain example.com --jwks-file data/integrator.jwks.json --no-secret --json > data/integrator-app.json
cat data/integrator-app.json
# {"client_id": "…", "token_endpoint_auth_method": "private_key_jwt", "secrets": [], "jwks": {"keys": [{"kid": "2026-12", …}]}, …}
