// Writes N distinct JWT-bearer grant assertions (EdDSA, one jti each), one per line, to stdout:
// the grant refuses a replayed jti, so each request of the bench needs its own.
//   node bench/sign-assertions.js KEY.pem ISS SUB AUD N
const crypto = require("crypto");
const fs = require("fs");
const [keyFile, iss, sub, aud, n] = process.argv.slice(2);
const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
const b64 = (b) => Buffer.from(b).toString("base64url");
const header = b64(JSON.stringify({ alg: "EdDSA", kid: "bench", typ: "JWT" }));
const now = Math.floor(Date.now() / 1000);
const out = [];
for (let i = 0; i < Number(n); i++) {
  const payload = b64(JSON.stringify({ iss, sub, aud, iat: now, exp: now + 250, jti: crypto.randomUUID() }));
  const input = `${header}.${payload}`;
  out.push(`${input}.${b64(crypto.sign(null, Buffer.from(input), key))}`);
}
fs.writeSync(1, out.join("\n") + "\n");
