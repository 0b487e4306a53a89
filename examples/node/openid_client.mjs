// openid-client 6 with its defaults: discovery from the RFC 8414 metadata, the
// client_credentials grant with private_key_jwt (data/integrator.pem, registered by
// register-key.sh), a room listed with the token, and the token checked with jose against the
// JWKS as a resource server would.
// Needs: npm install openid-client@6 (jose comes with it). Run from the repository's root.
import { readFileSync } from 'node:fs'
import * as client from 'openid-client'
import * as jose from 'jose'

const AUTH_URL = process.env.AUTH_URL ?? 'http://127.0.0.1:8081'
const ROOMS_URL = process.env.ROOMS_URL ?? 'http://127.0.0.1:8082'
const { client_id } = JSON.parse(readFileSync('data/integrator-app.json', 'utf8'))
const key = await jose.importPKCS8(readFileSync('data/integrator.pem', 'utf8'), 'ES256')

const config = await client.discovery(
  new URL(AUTH_URL), client_id, undefined, client.PrivateKeyJwt({ key, kid: '2026-12' }),
  // RFC 8414 metadata; plain http is for the local stack only, never in production.
  { algorithm: 'oauth2', execute: AUTH_URL.startsWith('http:') ? [client.allowInsecureRequests] : [] },
)
const token = await client.clientCredentialsGrant(config, { scope: 'demo@example.com' })
console.log(token.token_type, token.scope)

const rooms = await fetch(`${ROOMS_URL}/external-api/v1.0/rooms`, {
  headers: { authorization: `Bearer ${token.access_token}` },
})
console.log((await rooms.json()).count, 'rooms')

const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri))
const { payload } = await jose.jwtVerify(token.access_token, jwks, { issuer: AUTH_URL, typ: 'at+jwt' })
console.log('verified: acting for', payload.sub, 'on behalf of', payload.act.sub)
