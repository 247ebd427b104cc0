import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromLabels } from '../../../../agent/src/model.js';
import {
  checkContainerOptions,
  proxyContainerOptions,
  proxyShape,
  proxySpecHash,
} from '../../../../agent/src/proxy/container.js';
import { redactNginxOutput } from '../../../../agent/src/proxy/driver.js';
import { ProxyConfigError } from '../../../../agent/src/proxy/render.js';
import type { ProxySpec } from '../../../../proto/gen/fleet/v1/agent.js';
import { proxySpec } from '../../../helpers/proxy-spec.js';

const spec = proxySpec;
const TLS = { tlsCertFile: '/etc/fleet/tls/a.crt', tlsKeyFile: '/etc/fleet/tls/a.key' };

const options = (s: ProxySpec) =>
  proxyContainerOptions({
    node: 'n1',
    deployment: 'demo',
    network: 'fleet-n1',
    configDir: '/var/lib/fleet/agent/n1/proxy/demo',
    shape: proxyShape(s),
  });

test('the serving container: name, command, network, published port, mounts, no restart policy, init', () => {
  const o = options(spec(TLS));
  assert.equal(o.name, 'fleet-n1-demo-proxy');
  assert.equal(o.Image, '127.0.0.1:5000/fleet/nginx:1');
  assert.deepEqual(o.Cmd, ['nginx', '-c', '/etc/fleet-proxy/nginx.conf', '-g', 'daemon off;']);
  assert.deepEqual(o.HostConfig?.PortBindings, { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '18070' }] });
  assert.equal(o.HostConfig?.NetworkMode, 'fleet-n1');
  const bind = (Source: string, Target: string) => ({ Type: 'bind', Source, Target, ReadOnly: true });
  assert.deepEqual(o.HostConfig?.Mounts, [
    bind('/var/lib/fleet/agent/n1/proxy/demo', '/etc/fleet-proxy'),
    bind('/etc/fleet/tls/a.crt', '/etc/fleet-proxy/tls/cert.pem'),
    bind('/etc/fleet/tls/a.key', '/etc/fleet-proxy/tls/key.pem'),
  ]);
  assert.equal(o.HostConfig?.Binds, undefined, 'Binds would create a missing certificate as a directory');
  assert.deepEqual(o.HostConfig?.RestartPolicy, { Name: 'no' });
  assert.equal(o.HostConfig?.Init, true);
  assert.deepEqual(options(spec()).HostConfig?.Mounts, [
    bind('/var/lib/fleet/agent/n1/proxy/demo', '/etc/fleet-proxy'),
  ]);
});

test('labels: managed, node, deployment, role, hash; the replica planner does not see the proxy', () => {
  const labels = options(spec()).Labels ?? {};
  assert.deepEqual(Object.keys(labels).sort(), [
    'fleet.deployment',
    'fleet.managed',
    'fleet.node',
    'fleet.role',
    'fleet.spec-hash',
  ]);
  assert.equal(labels['fleet.role'], 'proxy');
  assert.equal(
    fromLabels({ id: 'x', name: 'x', image: 'x', state: 'running', createdAtMs: 0 }, labels),
    undefined,
  );
  const check = checkContainerOptions(
    { node: 'n1', deployment: 'demo', configDir: '/d', shape: proxyShape(spec()) },
    '/etc/fleet-proxy/nginx.conf.next',
  );
  assert.equal(check.HostConfig?.NetworkMode, 'none');
  assert.equal(check.HostConfig?.PortBindings, undefined);
  assert.deepEqual(check.HostConfig?.Mounts, [
    { Type: 'bind', Source: '/d', Target: '/etc/fleet-proxy', ReadOnly: true },
  ]);
  assert.equal(
    fromLabels({ id: 'x', name: 'x', image: 'x', state: 'exited', createdAtMs: 0 }, check.Labels ?? {}),
    undefined,
  );
});

test('the hash covers image, listen address and port, TLS files, and nothing the config holds', () => {
  const base = proxySpecHash(proxyShape(spec()));
  for (const changed of [
    spec({ image: '127.0.0.1:5000/fleet/nginx:2' }),
    spec({ listenAddress: '0.0.0.0' }),
    spec({ listenPort: 18071 }),
    spec(TLS),
  ]) {
    assert.notEqual(proxySpecHash(proxyShape(changed)), base);
  }
  for (const same of [
    spec({ routes: [] }),
    spec({ ratePerSecond: 5, rateBurst: 1 }),
    spec({ apiKeysFile: '/etc/fleet/keys' }),
  ]) {
    assert.equal(proxySpecHash(proxyShape(same)), base);
  }
});

test('listen port and address are checked before they reach Docker', () => {
  for (const bad of [
    spec({ listenPort: 0 }),
    spec({ listenPort: 70000 }),
    spec({ listenAddress: '127.0.0.1 ' }),
  ])
    assert.throws(() => proxyShape(bad), ProxyConfigError);
});

test("nginx output is redacted of the key map's entries before it reaches an error", () => {
  const out = 'nginx: [emerg] bad "~^Bearer \\Qs3cr3t-s3cr3t-s3cr3t\\E$" in x\nAuthorization: Bearer s3cr3t';
  const red = redactNginxOutput(out);
  assert.ok(!red.includes('s3cr3t'), red);
  assert.match(red, /\[redacted\]/);
});
