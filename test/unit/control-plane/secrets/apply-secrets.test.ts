import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { ApplyResult } from '../../../../control-plane/src/deployer.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { DesiredStates } from '../../../../control-plane/src/desired/cache.js';
import { rollback } from '../../../../control-plane/src/rollback.js';
import { Keyring } from '../../../../control-plane/src/secrets/keyring.js';
import { Secrets } from '../../../../control-plane/src/secrets/service.js';
import { selfSignedPair } from '../../../helpers/tls-pair.js';
import { freshStores } from '../fixtures.js';

const freshStore = freshStores('fleet-secrets-apply-');
const PLANTED = 'PLANTED-6f1c2b9e-secret-value';

function setup(nodes: Record<string, Record<string, string>> = { n1: { gpu: 'y' }, n2: {} }) {
  const store = freshStore();
  const secrets = new Secrets(store, new Keyring(randomBytes(32)), () => 5);
  const pushes: string[][] = [];
  const desired = new DesiredStates(store.deployments, secrets.value);
  const deployer = new Deployer(
    store,
    { push: (n) => pushes.push([...n]) },
    { desired, parseOptions: { secrets: secrets.info } },
  );
  for (const [name, labels] of Object.entries(nodes))
    store.nodes.upsertHello({ name, labels, agentVersion: 't', facts: {} }, 1);
  return { store, secrets, deployer, pushes };
}

const PLAYBOOK = (hosts = 'gpu') => `name: web
hosts: ${hosts}
services:
  web:
    image: 127.0.0.1:5000/x/web:1
    port: 8080
    env:
      PLAIN: visible
      HF_TOKEN: { secret: hf-token }
`;

function ok(r: ApplyResult) {
  assert.ok(r.ok, `apply failed: ${JSON.stringify(r)}`);
  return r;
}

function errors(r: ApplyResult) {
  assert.ok(!r.ok && r.reason === 'invalid', JSON.stringify(r));
  return r.errors.map((e) => `${e.line}:${e.col} ${e.message}`);
}

describe('secrets at apply', () => {
  test('a reference to a secret that does not exist is refused at its line and column; nothing stored', () => {
    const { store, deployer } = setup();
    const errs = errors(deployer.apply(PLAYBOOK(), 'web.yml', false));
    assert.deepEqual(errs, ["9:27 secret 'hf-token' does not exist"]);
    assert.equal(store.deployments.current('web'), undefined);
  });

  test('the revision pins the fingerprint; the value reaches only assigned nodes and never the version hash', () => {
    const { store, secrets, deployer } = setup();
    const set = secrets.set('hf-token', Buffer.from(PLANTED), 'tester');
    assert.ok(set.ok);
    ok(deployer.apply(PLAYBOOK(), 'web.yml', false));
    const rev = store.deployments.current('web')!;
    assert.deepEqual(rev.spec.secret_pins, { 'hf-token': set.fingerprint });
    assert.equal(JSON.stringify(rev.spec).includes(PLANTED), false);
    const d1 = deployer.desiredFor('n1');
    const web = d1.deployments[0]!;
    assert.deepEqual(web.services[0]!.env, { PLAIN: 'visible' });
    assert.deepEqual(web.services[0]!.secretEnv, {
      HF_TOKEN: { name: 'hf-token', fingerprint: set.fingerprint },
    });
    assert.equal(Buffer.from(web.secrets[0]!.value).toString(), PLANTED);
    assert.deepEqual(deployer.desiredFor('n2').deployments, [], 'n2 is not selected: no value goes there');
    assert.equal(secrets.list()[0]?.usedBy.join(), 'web');
  });

  test('a new value makes the same playbook a new revision; the same value again changes nothing', () => {
    const { store, secrets, deployer } = setup();
    secrets.set('hf-token', Buffer.from('one'), 't');
    ok(deployer.apply(PLAYBOOK(), 'web.yml', false));
    const v1 = deployer.desiredFor('n1').version;
    assert.equal(
      secrets.set('hf-token', Buffer.from('one'), 't').ok && secrets.list()[0]?.fingerprint.length,
      32,
    );
    assert.equal(ok(deployer.apply(PLAYBOOK(), 'web.yml', false)).changed, false);
    const two = secrets.set('hf-token', Buffer.from('two'), 't');
    assert.ok(two.ok && two.changed);
    const r = ok(deployer.apply(PLAYBOOK(), 'web.yml', false));
    assert.equal(r.revision, 2);
    assert.notEqual(deployer.desiredFor('n1').version, v1);
    // Revision 1 still delivers the version it pinned (a rollout's later batches, a rollback).
    const rev1 = store.deployments.revision('web', 1)!;
    assert.equal(secrets.value('hf-token', rev1.spec.secret_pins!['hf-token']!)?.toString(), 'one');
    assert.deepEqual(
      store.events
        .list(10)
        .filter((e) => e.kind.startsWith('secret.'))
        .map((e) => [e.kind, e.actor]),
      [
        ['secret.updated', 't'],
        ['secret.created', 't'],
      ],
    );
  });

  test('a rollback delivers the secret versions its target pinned, where they are still stored', () => {
    const { store, secrets, deployer } = setup();
    const one = secrets.set('hf-token', Buffer.from('one'), 't');
    ok(deployer.apply(PLAYBOOK(), 'web.yml', false));
    secrets.set('hf-token', Buffer.from('two'), 't');
    ok(deployer.apply(PLAYBOOK(), 'web.yml', false));
    const back = rollback(store, deployer, 'web', { to: 1 });
    assert.ok(back.ok, JSON.stringify(back));
    assert.equal(back.revision, 3);
    assert.ok(one.ok);
    assert.deepEqual(store.deployments.current('web')!.spec.secret_pins, { 'hf-token': one.fingerprint });
    assert.equal(store.deployments.current('web')!.hash, store.deployments.revision('web', 1)!.hash);
  });

  test('a TLS reference needs a certificate with its key; a registry one needs user:password', () => {
    const { secrets, deployer } = setup();
    secrets.set('not-tls', Buffer.from('just text\n'), 't');
    secrets.set('regcred', Buffer.from('no colon here'), 't');
    const pb = `name: web
hosts: gpu
registry_auth:
  "registry.internal:5000": { secret: regcred }
services:
  web: { image: 127.0.0.1:5000/x/web:1, port: 8080 }
proxy:
  listen: 8443
  routes: [{ path: /, service: web }]
  tls: { secret: not-tls }
  api_keys: { secret: missing-keys }
`;
    assert.deepEqual(errors(deployer.apply(pb, 'p.yml', false)), [
      '4:39 secret \'regcred\' does not hold "username:password" on one line',
      "10:18 secret 'not-tls' does not hold a PEM certificate and its private key",
      "11:23 secret 'missing-keys' does not exist",
    ]);
    const pair = selfSignedPair('web');
    secrets.set('not-tls', Buffer.from(pair.cert + pair.key), 't');
    secrets.set('regcred', Buffer.from('fleet:pw'), 't');
    secrets.set('missing-keys', Buffer.from('k'.repeat(20)), 't');
    const r = ok(deployer.apply(pb, 'p.yml', false));
    assert.equal(r.revision, 1);
  });

  test('forms: tls takes a secret or both files, api_keys excludes api_keys_file, registries are hosts', () => {
    const { deployer } = setup();
    const pb = `name: web
hosts: gpu
registry_auth:
  "not a host": { secret: x }
services:
  web: { image: 127.0.0.1:5000/x/web:1, port: 8080 }
proxy:
  listen: 8443
  routes: [{ path: /, service: web }]
  tls: { secret: a, cert: /etc/fleet/a.crt }
  api_keys: { secret: b }
  api_keys_file: /etc/fleet/keys
`;
    const errs = errors(deployer.apply(pb, 'p.yml', false));
    assert.ok(errs.includes('10:3 tls takes secret: or cert: and key:, not both'), errs.join('\n'));
    assert.ok(errs.includes('11:3 api_keys and api_keys_file exclude each other'), errs.join('\n'));
    assert.ok(errs.includes("4:3 invalid registry 'not a host'"), errs.join('\n'));
  });

  test('delete is refused while a current revision uses the secret, then removes every version', () => {
    const { secrets, deployer } = setup();
    secrets.set('hf-token', Buffer.from('one'), 't');
    ok(deployer.apply(PLAYBOOK(), 'web.yml', false));
    const refused = secrets.delete('hf-token', 't');
    assert.ok(!refused.ok && refused.reason === 'in-use' && /web/.test(refused.message));
    ok(
      deployer.apply(
        PLAYBOOK().replace('HF_TOKEN: { secret: hf-token }', 'HF_TOKEN: plain'),
        'web.yml',
        false,
      ),
    );
    assert.deepEqual(secrets.delete('hf-token', 't'), { ok: true });
    assert.deepEqual(secrets.list(), []);
    const again = secrets.delete('hf-token', 't');
    assert.ok(!again.ok && again.reason === 'not-found');
  });

  test('bad names and sizes are refused before anything is stored', () => {
    const { secrets } = setup();
    for (const [name, value] of [
      ['Upper', 'x'],
      ['../etc', 'x'],
      ['ok', ''],
      ['big', 'x'.repeat(64 * 1024 + 1)],
    ] as const) {
      const r = secrets.set(name, Buffer.from(value), 't');
      assert.equal(r.ok, false, name);
    }
    assert.deepEqual(secrets.list(), []);
  });
});
