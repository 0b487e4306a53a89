// Writes N distinct DPoP proofs (RFC 9449, EdDSA, one jti each), one per line, to stdout: a
// proof is refused a second time, so each request of the bench needs its own.
//   node bench/sign-dpop-proofs.js KEY.pem METHOD URL [ACCESS_TOKEN|-] N
// With ACCESS_TOKEN the proofs carry its hash (`ath`), as a resource request's must.
const crypto = require("crypto");
const fs = require("fs");
const [keyFile, htm, htu, token, n] = process.argv.slice(2);
const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
const pub = crypto.createPublicKey(key).export({ format: "jwk" });
const b64 = (b) => Buffer.from(b).toString("base64url");
const header = b64(JSON.stringify({ typ: "dpop+jwt", alg: "EdDSA", jwk: { kty: pub.kty, crv: pub.crv, x: pub.x } }));
const ath = token && token !== "-" ? b64(crypto.createHash("sha256").update(token).digest()) : undefined;
const iat = Math.floor(Date.now() / 1000);
const out = [];
for (let i = 0; i < Number(n); i++) {
  const claims = { jti: crypto.randomUUID(), htm, htu, iat };
  if (ath) claims.ath = ath;
  const input = `${header}.${b64(JSON.stringify(claims))}`;
  out.push(`${input}.${b64(crypto.sign(null, Buffer.from(input), key))}`);
}
fs.writeSync(1, out.join("\n") + "\n");
