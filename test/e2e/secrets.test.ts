/**
 * Secrets end to end, with security on and the real engines: values set with `fleet secret set`
 * reach a real container's environment, a real nginx (TLS pair and API keys) and a real pull from
 * a registry that requires a login (Debian's registry with htpasswd, 127.0.0.1:5001); a renewed
 * certificate reaches nginx through an apply alone; and recognisable planted values are found
 * nowhere else: not in any log line, API answer, CLI output, event, the database file, the agent's
 * persisted state or a container label.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REST_POLICY } from '../../control-plane/src/api/policy.js';
import { Cluster } from '../helpers/cluster.js';
import {
  docker,
  managedContainers,
  REGISTRY,
  removeLocalImage,
  removeManaged,
  requireEngines,
} from '../helpers/engines.js';
import { freePort, waitFor } from '../helpers/procs.js';
import { selfSignedPair } from '../helpers/tls-pair.js';

const NODE = 'e2e-sec';
const NGINX = `${REGISTRY}/fleet/nginx:1`;
const WEB = `${REGISTRY}/fleet-test/web:1`;
const AUTH_REGISTRY = process.env.FLEET_AUTH_REGISTRY ?? '127.0.0.1:5001';
const AUTH_PASSWORD_FILE = join(process.env.FLEET_CACHE ?? '/var/cache/fleet', 'registry-auth.password');
const PRIVATE = `${AUTH_REGISTRY}/fleet-test/private-${process.pid}:1`;

const tag = randomBytes(6).toString('hex');
const GREETING = `PLANTED-greeting-${tag}`;
const API_KEY = `PLANTED-apikey-${tag}`;
const pair1 = selfSignedPair('sec-1');
const pair2 = selfSignedPair('sec-2');
/** A line of each private key's base64 body: distinctive, and what a leak of the key would show. */
const keyLine = (pem: string) => pem.split('\n').find((l) => l.length > 40 && !l.startsWith('-----'))!;

/** Fails (never skips) when the authenticating registry is not up, saying how to start it. */
async function requireAuthRegistry(): Promise<string> {
  const how =
    'start it with `bash scripts/test.sh` (or `source scripts/services.sh && ensure_auth_registry`)';
  const res = await fetch(`http://${AUTH_REGISTRY}/v2/`).catch((err: Error) => {
    throw new Error(`authenticating registry not reachable at ${AUTH_REGISTRY} (${err.message}); ${how}`);
  });
  if (res.status !== 401)
    throw new Error(`${AUTH_REGISTRY} answered ${res.status}, not 401: it does not ask for a login; ${how}`);
  return readFileSync(AUTH_PASSWORD_FILE, 'utf8').trim();
}

/** Pushes the web image to the private registry under PRIVATE with a throwaway docker login. */
function pushPrivate(cluster: Cluster, password: string) {
  const env = { ...process.env, DOCKER_CONFIG: join(cluster.dir, 'docker-config') };
  const run = (...args: string[]) => execFileSync('docker', args, { env, stdio: 'pipe' });
  execFileSync('docker', ['login', AUTH_REGISTRY, '-u', 'fleet-e2e', '--password-stdin'], {
    env,
    input: password,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  run('tag', WEB, PRIVATE);
  run('push', PRIVATE);
  run('logout', AUTH_REGISTRY);
}

const playbook = (port: number, withAuth: boolean) => `name: sec
hosts: tier=sec
${withAuth ? `registry_auth:\n  "${AUTH_REGISTRY}": { secret: regcred }\n` : ''}rollout: { min_healthy_time: 1s, healthy_deadline: 20s }
services:
  web:
    image: ${PRIVATE}
    port: 8080
    env:
      PLAIN: visible
      GREETING: { secret: greeting }
    health: { path: /cgi-bin/health, interval: 500ms, timeout: 400ms, retries: 3 }
proxy:
  image: ${NGINX}
  listen: "127.0.0.1:${port}"
  routes:
    - { path: /, service: web }
  tls: { secret: web-tls }
  api_keys: { secret: web-keys }
`;

interface Served {
  status: number;
  body: string;
  fingerprint: string;
}

/** A request through nginx over TLS, trusting `caPem` (the self-signed certificate itself). */
function viaNginx(port: number, path: string, caPem: string, key?: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: caPem,
        agent: false,
        headers: key ? { authorization: `Bearer ${key}` } : {},
        timeout: 10_000,
      },
      (res) => {
        const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : [],
  );
}

describe('secrets: delivered where needed, absent everywhere else', () => {
  const cluster = new Cluster();
  let port = 0;
  let password = '';
  let pb = '';
  let regcred = '';

  before(async () => {
    await requireEngines([NGINX, WEB]);
    password = await requireAuthRegistry();
    regcred = `fleet-e2e:${password}`;
    await removeManaged([NODE]);
    pushPrivate(cluster, password);
    await removeLocalImage(PRIVATE);
    port = await freePort();
    await cluster.startServer();
    cluster.startAgent(NODE, { tier: 'sec' });
    await cluster.nodeConnected(NODE);
    writeFileSync(join(cluster.dir, 'tls.crt'), pair1.cert);
    writeFileSync(join(cluster.dir, 'tls.key'), pair1.key);
    writeFileSync(join(cluster.dir, 'keys.txt'), `# one key per line\n${API_KEY}\n`);
    for (const args of [
      ['greeting', '--from-literal', GREETING],
      ['web-tls', '--from-file', join(cluster.dir, 'tls.crt'), '--from-file', join(cluster.dir, 'tls.key')],
      ['web-keys', '--from-file', join(cluster.dir, 'keys.txt')],
      ['regcred', '--from-literal', regcred],
    ]) {
      const r = await cluster.cli('secret', 'set', ...args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /stored, \d+ bytes, fingerprint [0-9a-f]{12}/);
    }
  });

  after(async () => {
    await cluster.close();
    await removeManaged([NODE]);
    await removeLocalImage(PRIVATE);
  });

  test('without registry_auth the private image cannot be pulled, and the failure says why', async () => {
    pb = cluster.playbook('sec.yml', playbook(port, false));
    const r = await cluster.cli('apply', pb);
    assert.notEqual(r.code, 0, r.stdout);
    const status = await cluster.cli('status', 'sec');
    assert.match(status.stdout + r.stdout, /no basic auth credentials|unauthorized|authentication required/i);
    assert.deepEqual(
      (await managedContainers(NODE)).filter((c) => c.Labels['fleet.service'] === 'web'),
      [],
      'no replica ran',
    );
  });

  test('with registry_auth the agent pulls with the secret; env, TLS and API keys come from secrets', async () => {
    pb = cluster.playbook('sec.yml', playbook(port, true));
    const r = await cluster.cli('apply', pb);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.ok((await docker.getImage(PRIVATE).inspect()).Id, 'the private image is on the node');
    const served = await waitFor(
      'nginx serving over TLS',
      () => viaNginx(port, '/cgi-bin/env', pair1.cert, API_KEY),
      30_000,
    );
    assert.equal(served.status, 200);
    assert.match(served.body, new RegExp(`GREETING=${GREETING}`), 'the container has the value in its env');
    assert.equal(served.fingerprint, fingerprintOf(pair1.cert), 'nginx serves the certificate of the secret');
    assert.equal((await viaNginx(port, '/cgi-bin/env', pair1.cert)).status, 401, 'no key: refused');
    assert.equal((await viaNginx(port, '/cgi-bin/env', pair1.cert, `${API_KEY}x`)).status, 401, 'wrong key');
    const list = await cluster.cliJson<{ secrets: { name: string; usedBy: string[]; size: number }[] }>(
      'secret',
      'list',
    );
    assert.deepEqual(
      list.secrets.map((s) => [s.name, s.usedBy.join()]),
      [
        ['greeting', 'sec'],
        ['regcred', 'sec'],
        ['web-keys', 'sec'],
        ['web-tls', 'sec'],
      ],
    );
    assert.equal(list.secrets.find((s) => s.name === 'greeting')?.size, GREETING.length);
    const del = await cluster.cli('secret', 'delete', 'greeting');
    assert.notEqual(del.code, 0);
    assert.match(del.stderr, /used by the current revision of sec/);
  });

  test('a renewed certificate reaches nginx by an apply alone: same agent, no container touched by hand', async () => {
    const agentPid = cluster.agents.get(NODE)?.pid;
    const before = (await cluster.cliJson<{ revision: number }>('status', 'sec')).revision;
    writeFileSync(join(cluster.dir, 'tls.crt'), pair2.cert);
    writeFileSync(join(cluster.dir, 'tls.key'), pair2.key);
    const set = await cluster.cli(
      'secret',
      'set',
      'web-tls',
      '--from-file',
      join(cluster.dir, 'tls.crt'),
      '--from-file',
      join(cluster.dir, 'tls.key'),
    );
    assert.match(set.stdout, /used by sec: apply their playbooks again/);
    const diff = await cluster.cli('apply', pb, '--check', '--diff');
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /web-tls/);
    const r = await cluster.cli('apply', pb);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal((await cluster.cliJson<{ revision: number }>('status', 'sec')).revision, before + 1);
    const served = await waitFor(
      'nginx serving the renewed certificate',
      async () => {
        const s = await viaNginx(port, '/cgi-bin/env', pair2.cert, API_KEY);
        if (s.fingerprint !== fingerprintOf(pair2.cert)) throw new Error('old certificate still served');
        return s;
      },
      30_000,
    );
    assert.equal(served.status, 200);
    assert.equal(cluster.agents.get(NODE)?.pid, agentPid, 'the agent was not restarted');
  });

  test('planted values appear in no log, API answer, CLI output, event, database, state file or label', async () => {
    const planted = [GREETING, API_KEY, password, keyLine(pair1.key), keyLine(pair2.key)];
    const leaks: string[] = [];
    const look = (where: string, text: string) => {
      for (const p of planted) if (text.includes(p)) leaks.push(`${where} contains ${p.slice(0, 16)}…`);
    };
    look('server.log', cluster.log('server.log'));
    look(`agent-${NODE}.log`, cluster.log(`agent-${NODE}.log`));
    // Every GET route of the policy table, with its parameters filled in.
    const params: Record<string, string> = { name: 'sec', n: '1', id: '1' };
    for (const key of Object.keys(REST_POLICY).filter(
      (k) => k.startsWith('GET ') && !k.endsWith('/stream'),
    )) {
      const path = key
        .slice(4)
        .replace(/:(\w+)/g, (_, p: string) => (p === 'name' && key.includes('/nodes/') ? NODE : params[p]!));
      const res = await cluster.api(path);
      look(`GET ${path}`, await res.text());
    }
    for (const args of [
      ['secret', 'list', '-o', 'json'],
      ['status', 'sec', '-o', 'json'],
      ['events', '--limit', '500'],
      ['history', 'sec'],
      ['apply', pb, '--check', '--diff', '-o', 'json'],
      ['nodes', '-o', 'json'],
    ]) {
      const r = await cluster.cli(...args);
      look(`fleet ${args.join(' ')}`, r.stdout + r.stderr);
    }
    for (const f of filesUnder(join(cluster.dir, 'cp'))) look(f, readFileSync(f).toString('latin1'));
    const stateDir = join(cluster.dir, 'agents', NODE);
    for (const f of filesUnder(stateDir)) {
      const text = readFileSync(f).toString('latin1');
      const has = planted.some((p) => text.includes(p));
      if (!has) continue;
      // Only where a container needs them: the secret files, and nginx's config (its key map).
      const mode = statSync(f).mode & 0o777;
      const allowed = f.startsWith(join(stateDir, 'secrets')) || f.startsWith(join(stateDir, 'proxy'));
      if (!allowed || mode !== 0o600) leaks.push(`${f} (mode ${mode.toString(8)}) holds a secret`);
    }
    look('desired.json', readFileSync(join(stateDir, 'desired.json'), 'utf8'));
    for (const c of await managedContainers(NODE)) look(`labels of ${c.Names[0]}`, JSON.stringify(c.Labels));
    assert.deepEqual(leaks, []);
  });
});
