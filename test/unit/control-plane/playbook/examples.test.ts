import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { toDeploymentSpec } from '../../../../control-plane/src/desired/spec.js';
import { parsePlaybook } from '../../../../control-plane/src/playbook/parse.js';
import { rolloutPolicy } from '../../../../control-plane/src/rollout/policy.js';
import { ROOT } from '../../../helpers/procs.js';

/** The playbooks users start from must stay valid, and say what the README says they say. */
const ROOTS = ['/data', '/srv', '/mnt', '/var/lib/fleet/models'];
const load = (name: string) => {
  const r = parsePlaybook(readFileSync(join(ROOT, 'playbooks', name), 'utf8'), name, { volumeRoots: ROOTS });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.playbook;
};

test('playbooks/dev.yaml: the tiny model behind nginx, probed', () => {
  const p = load('dev.yaml');
  assert.equal(p.services.telechat?.health?.path, '/health');
  assert.equal(p.proxy?.listen, '127.0.0.1:18070');
  assert.equal(p.services.telechat?.publish, undefined, 'served through the proxy, not a port of its own');
});

test('playbooks/prod.yaml: vLLM as the engine of each replica, the server in upstream mode in front, nginx with TLS', () => {
  const p = load('prod.yaml');
  const s = p.services.telechat!;
  assert.equal(s.env.ENGINE, 'openai-upstream');
  assert.equal(s.env.UPSTREAM_URL, `http://127.0.0.1:${s.engine?.port}`);
  assert.match(s.engine!.image, /vllm/);
  assert.ok(
    s.engine!.volumes.every((v) => v.endsWith(':ro')),
    'weights mounted read-only',
  );
  assert.equal(s.gpus, 1);
  assert.ok(s.engine!.health && s.health, 'both halves are probed');
  assert.ok(p.proxy?.tls && p.proxy.api_keys_file);
  const spec = toDeploymentSpec({ deployment: p.name, revision: 1, hash: 'h', spec: p });
  const svc = spec.services[0]!;
  assert.equal(svc.engine?.port, 8000);
  assert.ok((svc.health?.startPeriodMs ?? 0) >= 10 * 60_000, 'a long start period for the model load');
  assert.ok((svc.engine?.health?.startPeriodMs ?? 0) >= 10 * 60_000);
  assert.deepEqual(
    spec.proxy?.routes.map((r) => [r.path, r.stream]),
    [
      ['/telechat/', true],
      ['/v1/', true],
    ],
  );
});

test('playbooks/prod.yaml: a canary node, then quarters; halts on any failure and rolls back; deadline covers the model load', () => {
  const policy = rolloutPolicy(load('prod.yaml'));
  assert.deepEqual(policy.serial, [1, '25%']);
  assert.equal(policy.maxFailPercentage, 0);
  assert.equal(policy.autoRollback, true);
  assert.equal(policy.prefetch, true);
  assert.equal(policy.healthyDeadlineMs, 25 * 60_000, 'start_period 20m + 5m');
});

test('playbooks/dev.yaml: no rollout keys, one batch of every node', () => {
  assert.equal(rolloutPolicy(load('dev.yaml')).serial, undefined);
});

test('an engine that reuses the service port, or a service without a port, is rejected at its line', () => {
  const yaml = `name: x
hosts: all
services:
  a:
    image: img
    port: 8000
    engine: { image: vllm, port: 8000 }
`;
  const r = parsePlaybook(yaml, 'x.yaml');
  assert.ok(!r.ok);
  assert.deepEqual(
    r.errors.map((e) => [e.line, e.message]),
    [[7, "engine port 8000 is the service's own port"]],
  );
});
