// Client assertions signed with jose (an independent JOSE implementation),
// for the tests of the gateway's token endpoint:
//   node assertion.mjs keygen ALG DIR         writes DIR/jose-key.json (private JWK)
//                                             and prints the public JWK Set
//   node assertion.mjs sign DIR CLIENT AUD    prints an assertion: iss = sub = CLIENT,
//                                             aud = AUD, 60 s, a random jti
import { readFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importJWK, calculateJwkThumbprint } from 'jose';

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'keygen') {
  const [alg, dir] = args;
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const priv = { ...(await exportJWK(privateKey)), kid, alg };
  writeFileSync(`${dir}/jose-key.json`, JSON.stringify(priv), { mode: 0o600 });
  process.stdout.write(JSON.stringify({ keys: [{ ...pub, kid, alg }] }) + '\n');
} else if (cmd === 'sign') {
  const [dir, client, aud] = args;
  const jwk = JSON.parse(readFileSync(`${dir}/jose-key.json`, 'utf8'));
  const key = await importJWK(jwk, jwk.alg);
  const jwt = await new SignJWT({})
    .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'JWT' })
    .setIssuer(client).setSubject(client).setAudience(aud)
    .setIssuedAt().setExpirationTime('60s').setJti(randomUUID())
    .sign(key);
  process.stdout.write(jwt + '\n');
} else {
  process.stderr.write('usage: node assertion.mjs keygen ALG DIR | sign DIR CLIENT AUD\n');
  process.exit(2);
}
