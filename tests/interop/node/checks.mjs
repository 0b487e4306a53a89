// Interoperability, Node.js side: openid-client 6 and jose with their defaults (only the URLs,
// credentials and keys given) against the stack. Run by tests/interop/interop.py, which reads
// one JSON line per flow from stdout: {"library", "flow", "ok", "detail"}.
// The packages are examples/node's (pinned there, installed by scripts/interop-test).
//
// Environment: AUTH_URL, ROOMS_URL, SECRET_CLIENT_ID, SECRET_CLIENT_SECRET (an application with
// the rooms scopes and tokens:introspect), KEY_CLIENT_ID, KEY_PEM (an ES256 key registered with
// kid KEY_KID), USER.
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

const examples = new URL('../../../examples/node/package.json', import.meta.url)
const requireFromExamples = createRequire(examples)
const load = async (name) => {
  const pkg = JSON.parse(readFileSync(requireFromExamples.resolve(`${name}/package.json`), 'utf8'))
  return { module: await import(pathToFileURL(requireFromExamples.resolve(name))), version: pkg.version }
}
const { module: client, version: clientVersion } = await load('openid-client')
const { module: jose, version: joseVersion } = await load('jose')

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}
const AUTH_URL = env('AUTH_URL')
const ROOMS_URL = env('ROOMS_URL')
const USER = env('USER')
const insecure = { execute: [client.allowInsecureRequests] } // the stack is plain http on loopback

const results = []
async function flow (library, name, fn) {
  try {
    const detail = await fn()
    results.push({ library, flow: name, ok: true, detail: detail ?? '' })
  } catch (e) {
    results.push({ library, flow: name, ok: false, detail: `${e.name}: ${e.message} ${e.cause ? JSON.stringify(e.cause) : ''}` })
  }
}
const assert = (cond, message) => { if (!cond) throw new Error(message) }
const rooms = (token) => fetch(`${ROOMS_URL}/external-api/v1.0/rooms`, { headers: { authorization: `Bearer ${token}` } })

const openid = `openid-client ${clientVersion}`
let secretConfig
await flow(openid, 'discovery (RFC 8414 metadata)', async () => {
  secretConfig = await client.discovery(new URL(AUTH_URL), env('SECRET_CLIENT_ID'), env('SECRET_CLIENT_SECRET'),
    undefined, { algorithm: 'oauth2', ...insecure })
  const meta = secretConfig.serverMetadata()
  assert(meta.token_endpoint === `${AUTH_URL}/oauth/token`, `token_endpoint ${meta.token_endpoint}`)
  return meta.issuer
})

let secretToken
await flow(openid, 'client_credentials, client_secret_post (its default)', async () => {
  secretToken = await client.clientCredentialsGrant(secretConfig, { scope: USER })
  assert((await rooms(secretToken.access_token)).status === 200, 'the rooms API refused the token')
  return secretToken.scope
})

await flow(openid, 'client_credentials, client_secret_basic', async () => {
  const config = await client.discovery(new URL(AUTH_URL), env('SECRET_CLIENT_ID'), undefined,
    client.ClientSecretBasic(env('SECRET_CLIENT_SECRET')), { algorithm: 'oauth2', ...insecure })
  const token = await client.clientCredentialsGrant(config, { scope: USER })
  assert((await rooms(token.access_token)).status === 200, 'the rooms API refused the token')
})

let keyToken
await flow(openid, 'client_credentials, private_key_jwt ES256', async () => {
  const key = await jose.importPKCS8(readFileSync(env('KEY_PEM'), 'utf8'), 'ES256')
  const config = await client.discovery(new URL(AUTH_URL), env('KEY_CLIENT_ID'), undefined,
    client.PrivateKeyJwt({ key, kid: env('KEY_KID') }), { algorithm: 'oauth2', ...insecure })
  keyToken = await client.clientCredentialsGrant(config, { scope: USER })
  assert((await rooms(keyToken.access_token)).status === 200, 'the rooms API refused the token')
})

await flow(openid, 'introspection', async () => {
  const active = await client.tokenIntrospection(secretConfig, secretToken.access_token)
  assert(active.active === true && active.username === USER, JSON.stringify(active))
  const unknown = await client.tokenIntrospection(secretConfig, 'not-a-token')
  assert(unknown.active === false, JSON.stringify(unknown))
})

await flow(openid, 'revocation, then refused at the rooms API', async () => {
  const token = await client.clientCredentialsGrant(secretConfig, { scope: USER })
  assert((await rooms(token.access_token)).status === 200, 'the fresh token was refused')
  await client.tokenRevocation(secretConfig, token.access_token)
  // RFC 7009 answers 200 whatever happened: the proof is the rooms API refusing it, once its
  // revocation feed poll has brought the revocation over.
  const deadline = Date.now() + 25_000
  while ((await rooms(token.access_token)).status !== 401) {
    assert(Date.now() < deadline, 'the revoked token still works at the rooms API')
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  assert((await rooms(secretToken.access_token)).status === 200, 'another token died too')
})

await flow(openid, 'DPoP: a bound token, used with its proofs at the rooms API', async () => {
  const dpop = client.getDPoPHandle(secretConfig, await client.randomDPoPKeyPair())
  const token = await client.clientCredentialsGrant(secretConfig, { scope: USER }, { DPoP: dpop })
  assert(token.token_type === 'dpop', `token_type ${token.token_type}`)
  const url = new URL(`${ROOMS_URL}/external-api/v1.0/rooms`)
  for (let i = 0; i < 2; i++) {
    const r = await client.fetchProtectedResource(secretConfig, token.access_token, url, 'GET', undefined, undefined, { DPoP: dpop })
    assert(r.status === 200, `with its proof: ${r.status} ${await r.text()}`)
  }
  // The token alone, as a thief would hold it: refused.
  assert((await rooms(token.access_token)).status === 401, 'the bound token worked as Bearer')
  const introspected = await client.tokenIntrospection(secretConfig, token.access_token)
  assert(introspected.token_type === 'DPoP' && introspected.cnf?.jkt, JSON.stringify(introspected))
})

await flow(`jose ${joseVersion}`, 'access token verified from the JWKS', async () => {
  const jwks = jose.createRemoteJWKSet(new URL(`${AUTH_URL}/.well-known/jwks.json`))
  const { payload, protectedHeader } = await jose.jwtVerify(keyToken.access_token, jwks,
    { issuer: AUTH_URL, typ: 'at+jwt' })
  assert(payload.act.sub === env('KEY_CLIENT_ID'), JSON.stringify(payload))
  // A token whose signature is altered is refused.
  const [h, p, s] = keyToken.access_token.split('.')
  const forged = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`
  let refused = false
  try { await jose.jwtVerify(forged, jwks, { issuer: AUTH_URL }) } catch { refused = true }
  assert(refused, 'a forged signature verified')
  return protectedHeader.alg
})

for (const r of results) console.log(JSON.stringify(r))
