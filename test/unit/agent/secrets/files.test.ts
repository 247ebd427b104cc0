import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkSecretFile } from '../../../../agent/src/proxy/allow.js';
import { refusalOf } from '../../../../agent/src/reconcile/admission.js';
import {
  allowedProxyFile,
  MATERIALIZED_SECRET,
  SecretFiles,
  SecretMissingError,
} from '../../../../agent/src/secrets/files.js';
import { RegistryLogins, registryOf } from '../../../../agent/src/secrets/registry.js';
import type { DesiredState } from '../../../../proto/gen/fleet/v1/agent.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

const root = mkdtempSync(join(tmpdir(), 'fleet-secret-files-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const FP = (c: string) => c.repeat(32);

function state(fp = FP('a')): DesiredState {
  return {
    version: `v-${fp}`,
    deployments: [
      {
        name: 'web',
        revision: 1,
        revisionHash: 'h',
        services: [serviceSpec({ secretEnv: { HF_TOKEN: { name: 'hf-token', fingerprint: fp } } })],
        proxy: {
          image: 'nginx:1',
          listenAddress: '127.0.0.1',
          listenPort: 8443,
          routes: [],
          ratePerSecond: 0,
          rateBurst: 0,
          tlsCertFile: '',
          tlsKeyFile: '',
          apiKeysFile: '',
          tlsSecret: { name: 'tls', fingerprint: fp },
          apiKeysSecret: { name: 'keys', fingerprint: fp },
        },
        registryAuth: [{ registry: '127.0.0.1:5001', secret: { name: 'reg', fingerprint: fp } }],
        secrets: ['hf-token', 'tls', 'keys', 'reg'].map((name) => ({
          name,
          fingerprint: fp,
          value: Buffer.from(name === 'reg' ? 'fleet:pw-PLANTED\n' : `PLANTED-${name}`),
        })),
      },
    ],
  };
}

describe('SecretFiles', () => {
  test('absorb writes each value owner-only and returns the state without values, proxy files resolved', () => {
    const dir = join(root, `s${n++}`, 'secrets');
    const files = new SecretFiles(dir);
    const out = files.absorb(state());
    assert.equal(JSON.stringify(out).includes('PLANTED'), false);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    assert.equal(files.read({ name: 'hf-token', fingerprint: FP('a') }), 'PLANTED-hf-token');
    const proxy = out.deployments[0]!.proxy!;
    assert.equal(proxy.tlsCertFile, join(dir, `tls.${FP('a')}`));
    assert.equal(proxy.tlsKeyFile, proxy.tlsCertFile);
    assert.equal(proxy.apiKeysFile, join(dir, `keys.${FP('a')}`));
    assert.equal(checkSecretFile('TLS certificate file', proxy.tlsCertFile), proxy.tlsCertFile);
    assert.match(proxy.tlsCertFile, new RegExp(MATERIALIZED_SECRET));
    assert.equal(readFileSync(proxy.apiKeysFile, 'utf8'), 'PLANTED-keys');
  });

  test('admission: a secret-backed proxy file is allowed only at the path its reference names', () => {
    const dir = join(root, `s${n++}`, 'secrets');
    const out = new SecretFiles(dir).absorb(state());
    assert.equal(refusalOf(out.deployments[0]!, ['/data']), undefined);
    const p = out.deployments[0]!.proxy!;
    const forged = { ...out.deployments[0]!, proxy: { ...p, tlsSecret: undefined } };
    assert.match(
      refusalOf(forged, ['/data']) ?? '',
      /proxy\.tls\.cert: .* is not a file under \/etc\/fleet\//,
    );
    const other = {
      ...out.deployments[0]!,
      proxy: { ...p, tlsSecret: { name: 'keys', fingerprint: FP('a') } },
    };
    assert.match(refusalOf(other, ['/data']) ?? '', /proxy\.tls\.cert/);
    assert.equal(
      allowedProxyFile(`/x/secrets/../secrets/tls.${FP('a')}`, { name: 'tls', fingerprint: FP('a') }),
      false,
    );
    assert.equal(allowedProxyFile('/etc/fleet/tls/a.crt', undefined), true);
  });

  test('a missing version is a clear, terminal error naming the secret and never a value', () => {
    const files = new SecretFiles(join(root, `s${n++}`, 'secrets'));
    assert.throws(
      () => files.read({ name: 'hf-token', fingerprint: FP('b') }),
      (e: Error) =>
        e instanceof SecretMissingError && /secret hf-token .* is not on this node/.test(e.message),
    );
    assert.throws(() => files.path({ name: '../../etc/passwd', fingerprint: FP('b') }), SecretMissingError);
  });

  test('prune keeps the versions of the states given and removes the rest', () => {
    const dir = join(root, `s${n++}`, 'secrets');
    const files = new SecretFiles(dir);
    const a = files.absorb(state(FP('a')));
    const b = files.absorb(state(FP('b')));
    files.absorb(state(FP('c')));
    files.prune([a, b]);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith(FP('c'))),
      [],
    );
    assert.equal(readdirSync(dir).length, 8);
  });

  test('registry logins: the image registry picks the secret; others pull anonymously', () => {
    const files = new SecretFiles(join(root, `s${n++}`, 'secrets'));
    const logins = new RegistryLogins(files);
    logins.learn(files.absorb(state()));
    assert.deepEqual(logins.forImage('127.0.0.1:5001/private/web:1'), {
      username: 'fleet',
      password: 'pw-PLANTED',
      serveraddress: '127.0.0.1:5001',
    });
    assert.equal(logins.forImage('127.0.0.1:5000/x/web:1'), undefined);
    assert.equal(registryOf('nginx:1.27'), 'docker.io');
    assert.equal(registryOf('library/nginx'), 'docker.io');
    assert.equal(registryOf('localhost/x'), 'localhost');
  });
});
