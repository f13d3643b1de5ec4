// An independent OpenID provider for the end-to-end tests: oidc-provider
// (a certified OpenID Connect implementation) issuing JWT access tokens by
// client credentials, which the gateway verifies through this server's
// JWKS URL like any external issuer (auth.issuers).
//
//   node tests/idp/server.mjs --port N --client ID:SECRET:SCOPES[:PATIENT] [--client ...]
//
// SCOPES is space-separated; a client given a PATIENT (a Patient id) gets
// it as the SMART launch context, the `patient` claim of its tokens. Every token's audience is the resource asked
// for (the `resource` parameter, RFC 8707), signed ES256 with a key made at
// start. Prints "listening 127.0.0.1:PORT" once it serves; the issuer is
// http://127.0.0.1:PORT, the JWK Set at /jwks, the token endpoint at /token.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const args = process.argv.slice(2);
let port = 0;
const clients = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--client') {
    const [id, secret, scopes, patient] = args[++i].split(':');
    clients.push({ id, secret, scopes: scopes.split(' ').filter(Boolean), patient });
  } else {
    console.error(`unknown argument ${args[i]}`);
    process.exit(2);
  }
}
if (!port || !clients.length) {
  console.error('usage: server.mjs --port N --client ID:SECRET:SCOPES[:PATIENT] ...');
  process.exit(2);
}

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'idp-es256', alg: 'ES256', use: 'sig' };
const allScopes = [...new Set(clients.flatMap((c) => c.scopes))];

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: clients.map((c) => ({
    client_id: c.id,
    client_secret: c.secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: c.scopes.join(' '),
    id_token_signed_response_alg: 'ES256',
  })),
  scopes: allScopes,
  jwks: { keys: [jwk] },
  extraTokenClaims: async (ctx, token) => {
    const c = clients.find((x) => x.id === token.clientId);
    return c && c.patient ? { patient: c.patient } : undefined;
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        audience: resource,
        scope: allScopes.join(' '),
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
provider.proxy = false;

const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  console.log(`listening 127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
