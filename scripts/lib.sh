# Shell helpers the scripts share. Source it: `. "$(dirname "$0")/lib.sh"`.

# A TCP port free on loopback right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until BASE_URL/readyz answers 2xx (default 30 s); fails with a message otherwise.
wait_ready() {
  local url="$1" tries=$(( ${2:-30} * 10 ))
  for _ in $(seq 1 "$tries"); do
    if curl -fsS "$url/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$url did not become ready (GET $url/readyz)" >&2
  return 1
}

# Prints one top-level string field of a JSON document: json_field FIELD [FILE] (stdin without FILE).
json_field() {
  python3 -c 'import json, sys; v = json.load(open(sys.argv[2]) if len(sys.argv) > 2 else sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$@"
}

# Base64 of a string on one line (HTTP Basic credentials): b64 "id:secret".
b64() { printf '%s' "$1" | base64 -w0; }

# base64url without padding of stdin (JWT segments): printf '%s' "$json" | b64url.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
