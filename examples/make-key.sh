# Key pairs for private_key_jwt and the JWT-bearer grant: the private keys stay in data/
# (git-ignored), one public JWKS holding both goes to the operator. EC (ES256) is the compact
# choice; google-auth signs only RS256, hence the RSA key.
# Needs: pip install "pyjwt[crypto]"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out data/integrator.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out data/integrator-rsa.pem
python3 - <<'PY'
import json, jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
def public(path, alg, kid):
    key = load_pem_private_key(open(path, "rb").read(), password=None)
    jwk = jwt.get_algorithm_by_name(alg).to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig"}
json.dump({"keys": [public("data/integrator.pem", "ES256", "2026-12"),
                    public("data/integrator-rsa.pem", "RS256", "rsa-2026-12")]},
          open("data/integrator.jwks.json", "w"))
PY
