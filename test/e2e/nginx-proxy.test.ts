/**
 * The nginx proxy against the real engines: rendered configs pass real `nginx -t`, and the driver
 * runs real nginx (127.0.0.1:5000/fleet/nginx:1) in front of upstream containers on the node's
 * Docker network. nginx is reached only through ports published on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureNetwork, networkName } from '../../agent/src/docker/network.js';
import { DockerProxyDriver, runToCompletion } from '../../agent/src/docker/proxy-engine.js';
import { ProxyApplyError } from '../../agent/src/proxy/driver.js';
import { renderNginxConfig, type Upstream } from '../../agent/src/proxy/render.js';
import { createLogger } from '../../common/log.js';
import type { ProxySpec } from '../../proto/gen/fleet/v1/agent.js';
import { docker, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { freePort, waitFor } from '../helpers/procs.js';
import { proxyRoute, proxySpec } from '../helpers/proxy-spec.js';

const NGINX = `${REGISTRY}/fleet/nginx:1`;
const INFERENCE = `${REGISTRY}/fleet/inference:dev`;
const NODE = `pxe2e-${process.pid}`;
const KEY = 'e2e-key-0123456789abcdef';

/** Upstream replica: /health, /stream?n=&type= (a chunk every 100 ms), /big (2 KB JSON), /headers, else name + URL. */
const SERVER = `const http=require('http');const name=process.env.NAME;
http.createServer((q,s)=>{const u=new URL(q.url,'http://x');
if(u.pathname==='/health'){s.setHeader('content-type','application/json');return s.end(JSON.stringify({status:'ok',name}))}
if(u.pathname.endsWith('/stream')){const n=Number(u.searchParams.get('n')||10);let i=0;
s.writeHead(200,{'content-type':u.searchParams.get('type')||'text/event-stream'});
const t=setInterval(()=>{s.write('data: '+name+'-'+i+'\\n\\n');if(++i>=n){clearInterval(t);s.end()}},100);
return s.on('close',()=>clearInterval(t))}
if(u.pathname.endsWith('/big')){s.setHeader('content-type','application/json');return s.end(JSON.stringify({pad:'x'.repeat(2048)}))}
if(u.pathname.endsWith('/headers')){s.setHeader('content-type','application/json');return s.end(JSON.stringify(q.headers))}
s.setHeader('content-type','text/plain');s.end(name+' '+q.url)}).listen(8070)`;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** When each body chunk arrived (ms since the request), with its text. */
  chunks: { at: number; text: string }[];
}

/** One request on a fresh connection (no keepalive: a reload must not race a reused socket). */
function get(
  url: string,
  opts: { headers?: Record<string, string>; ca?: string; onChunk?: () => void } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const started = Date.now();
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(u, { agent: false, headers: opts.headers, ca: opts.ca, timeout: 15_000 }, (res) => {
      const chunks: Reply['chunks'] = [];
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        chunks.push({ at: Date.now() - started, text });
        opts.onChunk?.();
      });
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: chunks.map((c) => c.text).join(''),
          chunks,
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

const spec = (port: number, over: Partial<ProxySpec> = {}): ProxySpec =>
  proxySpec({
    image: NGINX,
    listenPort: port,
    routes: [
      proxyRoute({ service: 'echo' }),
      proxyRoute({ path: '/v1/', service: 'echo', stream: false, readTimeoutS: 30, rewrite: '' }),
    ],
    ...over,
  });

const render = (deployment: string, s: ProxySpec, echo: Upstream[], apiKeys: string[] = [], health = true) =>
  renderNginxConfig({
    deployment,
    spec: s,
    upstreams: { echo },
    healthPaths: health ? { echo: '/health' } : {},
    apiKeys,
  });

/** nginx's master and worker PIDs, from `docker top` (no exec into the container). */
async function nginxPids(name: string) {
  const top = (await docker.getContainer(name).top({ ps_args: '-eo pid,args' })) as { Processes: string[][] };
  const rows = top.Processes.map(([pid = '', ...args]) => ({ pid, cmd: args.join(' ') }));
  return {
    master: rows.find((r) => r.cmd.includes('nginx: master'))?.pid,
    workers: rows
      .filter((r) => r.cmd.includes('nginx: worker'))
      .map((r) => r.pid)
      .sort(),
  };
}

describe('nginx proxy under Docker', { timeout: 180_000 }, () => {
  const log = createLogger('proxy-e2e', 'silent');
  const configRoot = mkdtempSync(join(tmpdir(), 'fleet-proxy-e2e-'));
  let tlsDir = '';
  let cert = '';
  const driver = () => new DockerProxyDriver({ docker, node: NODE, configRoot, log });
  const upstreams: Record<string, Upstream> = {};
  const ports = { plain: 0, secure: 0, limited: 0 };
  const name = (deployment: string) => `fleet-${NODE}-${deployment}-proxy`;

  before(async () => {
    await requireEngines([NGINX, INFERENCE]);
    mkdirSync('/etc/fleet', { recursive: true });
    tlsDir = mkdtempSync('/etc/fleet/proxy-e2e-');
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost'],
        ...[
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          `${tlsDir}/tls.key`,
          '-out',
          `${tlsDir}/tls.crt`,
        ],
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(`${tlsDir}/tls.crt`, 'utf8');
    const net = await ensureNetwork(docker, NODE);
    for (const replica of ['a', 'b']) {
      const c = await docker.createContainer({
        Image: INFERENCE,
        name: `fleet-${NODE}-echo-${replica}`,
        Entrypoint: ['node'],
        Cmd: ['-e', SERVER],
        Env: [`NAME=${replica}`],
        Labels: { 'fleet.node': NODE, 'fleet.test': 'proxy-e2e' },
        Healthcheck: { Test: ['NONE'] },
        HostConfig: { NetworkMode: net },
      });
      await c.start();
      const ip = (await c.inspect()).NetworkSettings.Networks[net]?.IPAddress ?? '';
      upstreams[replica] = { address: ip, port: 8070 };
    }
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  });

  after(async () => {
    // Local files first: they go even when Docker is what failed.
    rmSync(configRoot, { recursive: true, force: true });
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
    await removeManaged([NODE]);
    await docker
      .getNetwork(networkName(NODE))
      .remove()
      .catch(() => {});
  });

  test('rendered configs with every feature pass real nginx -t; a broken one does not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-proxy-check-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const a = upstreams.a!;
    const tls = { tlsCertFile: `${tlsDir}/tls.crt`, tlsKeyFile: `${tlsDir}/tls.key` };
    const configs = [
      render('plain', spec(1), [a]),
      render('plain', spec(1), []),
      render('plain', spec(1), [a, upstreams.b!], [], false),
      render(
        'secure',
        spec(1, { ...tls, apiKeysFile: '/etc/fleet/k', ratePerSecond: 5, rateBurst: 9 }),
        [a],
        [KEY],
      ),
      render('keys', spec(1, { apiKeysFile: '/etc/fleet/k' }), [], [KEY, 'Z'.repeat(256)]),
    ];
    for (const [i, c] of configs.entries()) writeFileSync(join(dir, `c${i}.conf`), c);
    mkdirSync(join(dir, 'tls'));
    for (const f of ['cert.pem', 'key.pem']) writeFileSync(join(dir, 'tls', f), '');
    const bind = (Source: string, Target: string) => ({
      Type: 'bind' as const,
      Source,
      Target,
      ReadOnly: true,
    });
    const check = (script: string) =>
      runToCompletion(
        docker,
        {
          Image: NGINX,
          Cmd: ['sh', '-c', script],
          Labels: { 'fleet.node': NODE },
          HostConfig: {
            NetworkMode: 'none',
            Mounts: [
              bind(dir, '/etc/fleet-proxy'),
              bind(tls.tlsCertFile, '/etc/fleet-proxy/tls/cert.pem'),
              bind(tls.tlsKeyFile, '/etc/fleet-proxy/tls/key.pem'),
            ],
          },
        },
        60_000,
      );
    const ok = await check(
      'for f in /etc/fleet-proxy/*.conf; do nginx -t -q -c "$f" || exit 1; done; echo ALL-OK',
    );
    assert.equal(ok.exitCode, 0, ok.output);
    assert.match(ok.output, /ALL-OK/);
    writeFileSync(
      join(dir, 'broken.conf'),
      configs[0]!.replace('worker_processes auto;', 'worker_processes sideways;'),
    );
    const bad = await check('nginx -t -q -c /etc/fleet-proxy/broken.conf');
    assert.notEqual(bad.exitCode, 0, 'nginx -t must be able to fail');
  });

  test('sync creates the proxy: health forwarding, rewrite, headers, gzip only off the stream route', async () => {
    const s = spec(ports.plain);
    assert.equal(await driver().sync('plain', s, render('plain', s, [upstreams.a!])), 'created');
    const base = `http://127.0.0.1:${ports.plain}`;
    const health = await waitFor('proxy answers /health', () => get(`${base}/health`).catch(() => undefined));
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: 'ok', name: 'a' });
    assert.equal((await get(`${base}/api/who`)).body, 'a /who');
    assert.equal((await get(`${base}/v1/who`)).body, 'a /v1/who');
    const seen = JSON.parse((await get(`${base}/v1/headers`)).body) as Record<string, string>;
    assert.ok(seen['x-request-id'] && seen['x-real-ip'] && seen['x-forwarded-for'], JSON.stringify(seen));
    assert.equal(seen['x-forwarded-proto'], 'http');
    const gz = { 'accept-encoding': 'gzip' };
    assert.equal((await get(`${base}/v1/big`, { headers: gz })).headers['content-encoding'], 'gzip');
    assert.equal((await get(`${base}/api/big`, { headers: gz })).headers['content-encoding'], undefined);
    const info = await docker.getContainer(name('plain')).inspect();
    assert.equal(info.Config.Labels['fleet.role'], 'proxy');
    assert.equal(info.Config.Labels['fleet.service'], undefined);
  });

  test('a stream arrives chunk by chunk, spread over time', async () => {
    // JSON that a client would take gzipped: gzip (on for JSON elsewhere) would hold chunks back.
    const r = await get(`http://127.0.0.1:${ports.plain}/api/stream?n=10&type=application/json`, {
      headers: { 'accept-encoding': 'gzip' },
    });
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.body, Array.from({ length: 10 }, (_, i) => `data: a-${i}\n\n`).join(''));
    assert.ok(r.chunks.length >= 8, `only ${r.chunks.length} chunks: nginx buffered the stream`);
    const spread = r.chunks.at(-1)!.at - r.chunks[0]!.at;
    assert.ok(spread >= 700, `chunks arrived within ${spread} ms: not streamed`);
  });

  test('sync with the same config does nothing, also from a new driver (agent restart)', async () => {
    const s = spec(ports.plain);
    const conf = join(configRoot, 'plain', 'nginx.conf');
    const before = await docker.getContainer(name('plain')).inspect();
    const pids = await nginxPids(name('plain'));
    const mtime = statSync(conf).mtimeMs;
    assert.ok(pids.master && pids.workers.length > 0);
    for (const d of [driver(), driver()]) {
      assert.equal(await d.sync('plain', s, render('plain', s, [upstreams.a!])), 'unchanged');
      assert.equal(await d.sync('plain', s, render('plain', s, [upstreams.a!])), 'unchanged');
    }
    const now = await docker.getContainer(name('plain')).inspect();
    assert.equal(now.Id, before.Id);
    assert.equal(now.State.StartedAt, before.State.StartedAt);
    assert.deepEqual(await nginxPids(name('plain')), pids, 'no reload: same master and workers');
    assert.equal(statSync(conf).mtimeMs, mtime);
  });

  test('reload with a changed upstream while a stream is in flight: the stream completes intact', async () => {
    const s = spec(ports.plain);
    const pids = await nginxPids(name('plain'));
    let reload: Promise<string> | undefined;
    const stream = get(`http://127.0.0.1:${ports.plain}/api/stream?n=30`, {
      onChunk: () => {
        reload ??= driver().sync('plain', s, render('plain', s, [upstreams.b!]));
      },
    });
    const r = await stream;
    assert.equal(await reload, 'reloaded');
    assert.equal(r.body, Array.from({ length: 30 }, (_, i) => `data: a-${i}\n\n`).join(''));
    const now = await nginxPids(name('plain'));
    assert.equal(now.master, pids.master, 'a reload keeps the master');
    await waitFor(
      'new requests go to b',
      async () => (await get(`http://127.0.0.1:${ports.plain}/api/who`)).body === 'b /who',
    );
  });

  test('a config nginx refuses, or a missing TLS file: ProxyApplyError, the old config keeps serving', async () => {
    const s = spec(ports.plain);
    const conf = join(configRoot, 'plain', 'nginx.conf');
    const good = readFileSync(conf, 'utf8');
    const id = (await docker.getContainer(name('plain')).inspect()).Id;
    const broken = `${good}this is not nginx;\n`;
    await assert.rejects(driver().sync('plain', s, broken), (err: Error) => {
      assert.ok(err instanceof ProxyApplyError, String(err));
      assert.match(err.message, /unknown directive "this"/);
      return true;
    });
    const missing = spec(ports.plain, {
      tlsCertFile: `${tlsDir}/absent.crt`,
      tlsKeyFile: `${tlsDir}/tls.key`,
    });
    await assert.rejects(
      driver().sync('plain', missing, render('plain', missing, [upstreams.b!])),
      ProxyApplyError,
    );
    assert.equal(readFileSync(conf, 'utf8'), good);
    assert.equal((await docker.getContainer(name('plain')).inspect()).Id, id);
    assert.equal((await get(`http://127.0.0.1:${ports.plain}/api/who`)).body, 'b /who');
    assert.equal(statSync(`${tlsDir}/absent.crt`, { throwIfNoEntry: false }), undefined, 'no directory made');
  });

  test('no healthy replica: 503 with Retry-After and JSON on the route and on /health', async () => {
    const s = spec(ports.plain);
    assert.equal(await driver().sync('plain', s, render('plain', s, [])), 'reloaded');
    for (const path of ['/api/who', '/health']) {
      const r = await waitFor(`503 on ${path}`, async () => {
        const res = await get(`http://127.0.0.1:${ports.plain}${path}`);
        return res.status === 503 ? res : undefined;
      });
      assert.equal(r.headers['retry-after'], '5');
      assert.equal(JSON.parse(r.body).service, 'echo');
    }
  });

  test('a stopped proxy is started again by sync', async () => {
    await docker.getContainer(name('plain')).stop({ t: 2 });
    const s = spec(ports.plain);
    assert.equal(await driver().sync('plain', s, render('plain', s, [upstreams.a!])), 'created');
    const r = await waitFor('proxy serves again', () =>
      get(`http://127.0.0.1:${ports.plain}/api/who`).catch(() => undefined),
    );
    assert.equal(r.body, 'a /who');
  });

  test('TLS and API keys: no key 401, wrong-case key 401, good key 200; /health needs no key', async () => {
    const s = spec(ports.secure, {
      tlsCertFile: `${tlsDir}/tls.crt`,
      tlsKeyFile: `${tlsDir}/tls.key`,
      apiKeysFile: '/etc/fleet/unused',
    });
    assert.equal(await driver().sync('secure', s, render('secure', s, [upstreams.a!], [KEY])), 'created');
    const base = `https://127.0.0.1:${ports.secure}`;
    const health = await waitFor('TLS proxy up', () =>
      get(`${base}/health`, { ca: cert }).catch(() => undefined),
    );
    assert.equal(health.status, 200);
    const noKey = await get(`${base}/api/who`, { ca: cert });
    assert.equal(noKey.status, 401);
    assert.equal(noKey.headers['www-authenticate'], 'Bearer');
    const auth = (k: string) => ({ ca: cert, headers: { authorization: `Bearer ${k}` } });
    assert.equal((await get(`${base}/api/who`, auth(KEY.toUpperCase()))).status, 401);
    assert.equal((await get(`${base}/api/who`, auth(`${KEY}x`))).status, 401);
    const ok = await get(`${base}/api/who`, auth(KEY));
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'a /who');
  });

  test('rate limit: a burst beyond per_second + burst gets 429s', async () => {
    const s = spec(ports.limited, { ratePerSecond: 2, rateBurst: 3 });
    assert.equal(await driver().sync('limited', s, render('limited', s, [upstreams.a!])), 'created');
    const url = `http://127.0.0.1:${ports.limited}/v1/who`;
    await waitFor('limited proxy up', () => get(url).catch(() => undefined));
    await new Promise((r) => setTimeout(r, 2_000)); // let the bucket refill after the wait
    const started = Date.now();
    const codes: number[] = [];
    for (let i = 0; i < 15; i++) codes.push((await get(url)).status);
    const allowed = 3 + 1 + Math.ceil(((Date.now() - started) / 1000) * 2);
    const passed = codes.filter((c) => c === 200).length;
    assert.ok(
      codes.every((c) => c === 200 || c === 429),
      codes.join(','),
    );
    assert.ok(codes.includes(429), `no 429 in ${codes.join(',')}`);
    assert.ok(
      passed >= 4 && passed <= allowed,
      `${passed} passed, at most ${allowed} allowed: ${codes.join(',')}`,
    );
  });

  test('prune removes the proxies (containers and config dirs) of deployments not kept', async () => {
    assert.deepEqual(await driver().prune(new Set(['secure'])), ['limited', 'plain']);
    for (const d of ['plain', 'limited']) {
      await assert.rejects(
        docker.getContainer(name(d)).inspect(),
        (e: { statusCode?: number }) => e.statusCode === 404,
      );
      assert.equal(statSync(join(configRoot, d), { throwIfNoEntry: false }), undefined);
    }
    assert.ok(statSync(join(configRoot, 'secure')).isDirectory());
    assert.deepEqual(await driver().prune(new Set()), ['secure']);
    assert.deepEqual(await driver().prune(new Set()), []);
  });
});
