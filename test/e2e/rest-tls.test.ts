/**
 * The REST API over TLS with real processes: `fleet server`, the `fleet` CLI, curl and a real
 * Prometheus. Plain HTTP gets no answer; a client without the control plane's CA is told which
 * flag or variable to set; `fleet login` keeps the CA with the token; Prometheus scrapes /metrics
 * with the CA and a viewer token; an operator's certificate from files is what the port serves,
 * and bad files stop `fleet server` with the reason before it creates anything.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { Cluster } from '../helpers/cluster.js';
import { fetchTrusting } from '../helpers/https.js';
import { fleet, freePort, stop, waitFor } from '../helpers/procs.js';

/** A self-signed certificate and key made by openssl, as an operator brings them; its SHA-256 fingerprint. */
function opensslCert(dir: string) {
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, 'api.crt');
  const key = join(dir, 'api.key');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
      ...['-subj', '/CN=api.example', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:api.example'],
      ...['-keyout', key, '-out', cert],
    ],
    { stdio: 'pipe' },
  );
  const fp = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], {
    encoding: 'utf8',
  });
  return { cert, key, fingerprint: fp.trim().replace(/^.*=/, '') };
}

/** The fingerprint of the certificate served on `port`, verified against `caFile`. */
function servedFingerprint(port: number, caFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(caFile) }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

describe('the REST API over TLS (real processes)', { timeout: 120_000 }, () => {
  const cluster = new Cluster();
  const noConfig = () => ({
    FLEET_CONFIG: join(cluster.dir, 'none.json'),
    FLEET_TOKEN: '',
    FLEET_CA_FILE: '',
  });

  before(() => cluster.startServer());
  after(() => cluster.close());

  test('plain HTTP to the REST port gets no HTTP answer; the CLI says to use https://', async () => {
    const plain = new Promise<number>((resolve, reject) =>
      request(`http://127.0.0.1:${cluster.httpPort}/healthz`, (res) => resolve(res.statusCode ?? 0))
        .on('error', reject)
        .end(),
    );
    await assert.rejects(plain);
    const r = await fleet(['--server', `http://127.0.0.1:${cluster.httpPort}`, 'nodes'], {
      ...noConfig(),
      FLEET_TOKEN: cluster.adminToken,
      FLEET_CA_FILE: cluster.caFile,
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /serves HTTPS only: use --server https:\/\/127\.0\.0\.1:\d+/);
  });

  test('a CLI without the CA fails verification and names --ca-file and FLEET_CA_FILE; with it, it works', async () => {
    const without = await fleet(['--server', cluster.url, 'nodes'], {
      ...noConfig(),
      FLEET_TOKEN: cluster.adminToken,
    });
    assert.equal(without.code, 1);
    assert.match(
      without.stderr,
      /cannot verify the certificate of https:\/\/127\.0\.0\.1:\d+ \(\w+\); trust the control plane's CA with --ca-file DATA_DIR\/ca\.crt or FLEET_CA_FILE/,
    );
    const missing = await fleet(
      ['--server', cluster.url, '--ca-file', join(cluster.dir, 'nope.crt'), 'nodes'],
      {
        ...noConfig(),
        FLEET_TOKEN: cluster.adminToken,
      },
    );
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the CA file .*nope\.crt \(ENOENT\)/);
    const flag = await fleet(['--server', cluster.url, '--ca-file', cluster.caFile, 'nodes', '-o', 'json'], {
      ...noConfig(),
      FLEET_TOKEN: cluster.adminToken,
    });
    assert.equal(flag.code, 0, flag.stderr);
    const env = await fleet(['--server', cluster.url, 'nodes', '-o', 'json'], {
      ...noConfig(),
      FLEET_TOKEN: cluster.adminToken,
      FLEET_CA_FILE: cluster.caFile,
    });
    assert.equal(env.code, 0, env.stderr);
    assert.deepEqual(JSON.parse(env.stdout), { nodes: [] });
  });

  test('fleet login saves the server, the token and the CA path (0600); later commands need no flags', async () => {
    const config = join(cluster.dir, 'login', 'config.json');
    const login = await fleet(
      [
        ...['login', '--server', cluster.url, '--token-file', join(cluster.dir, 'cp', 'admin-token')],
        ...['--ca-file', cluster.caFile],
      ],
      { ...noConfig(), FLEET_CONFIG: config },
    );
    assert.equal(login.code, 0, login.stderr);
    assert.equal(statSync(config).mode & 0o777, 0o600);
    const saved = JSON.parse(readFileSync(config, 'utf8')) as Record<string, string>;
    assert.deepEqual(saved, { server: cluster.url, token: cluster.adminToken, caFile: cluster.caFile });
    const r = await fleet(['nodes', '-o', 'json'], { ...noConfig(), FLEET_CONFIG: config });
    assert.equal(r.code, 0, r.stderr);
  });

  test('curl with --cacert reaches the API; without it, curl refuses the certificate', () => {
    const url = `${cluster.url}/v1/nodes`;
    const auth = `authorization: Bearer ${cluster.adminToken}`;
    const ok = spawnSync('curl', ['-fsS', '--cacert', cluster.caFile, '-H', auth, url], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { nodes: [] });
    const bad = spawnSync('curl', ['-fsS', '-H', auth, url], { encoding: 'utf8' });
    assert.equal(bad.status, 60, 'curl: peer certificate cannot be authenticated');
  });

  test('Prometheus scrapes /metrics over HTTPS with the CA and a viewer token: the target is up', async () => {
    const dir = join(cluster.dir, 'prom');
    mkdirSync(dir);
    const viewer = await cluster.cli('token', 'create', '--role', 'viewer', '--name', 'prometheus');
    assert.equal(viewer.code, 0, viewer.stderr);
    writeFileSync(join(dir, 'token'), viewer.stdout.trim(), { mode: 0o600 });
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      `global: { scrape_interval: 1s }
scrape_configs:
  - job_name: fleet
    scheme: https
    tls_config: { ca_file: ${cluster.caFile} }
    authorization: { credentials_file: ${join(dir, 'token')} }
    static_configs: [{ targets: ["127.0.0.1:${cluster.httpPort}"] }]
`,
    );
    const check = spawnSync('promtool', ['check', 'config', config], { encoding: 'utf8' });
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
    const port = await freePort();
    const prom: ChildProcess = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    try {
      const target = await waitFor(
        'the fleet target scraped',
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/api/v1/targets`);
          const body = (await res.json()) as {
            data: { activeTargets: { health: string; lastError: string }[] };
          };
          const t = body.data.activeTargets[0];
          return t && t.health !== 'unknown' ? t : undefined;
        },
        30_000,
        250,
      );
      assert.equal(target.health, 'up', target.lastError);
    } finally {
      await stop(prom);
    }
  });
});

describe('fleet server --tls-cert / --tls-key (real processes)', { timeout: 60_000 }, () => {
  const cluster = new Cluster();
  after(() => cluster.close());

  test('bad files: exit 2 with the reason, and no data folder is created', async () => {
    const files = opensslCert(join(cluster.dir, 'files'));
    const other = opensslCert(join(cluster.dir, 'other'));
    const dataDir = join(cluster.dir, 'never');
    const base = ['server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--grpc-listen', '127.0.0.1:0'];
    const one = await fleet([...base, '--tls-cert', files.cert]);
    assert.equal(one.code, 2);
    assert.match(one.stderr, /--tls-cert and --tls-key go together/);
    const mismatched = await fleet([...base, '--tls-cert', files.cert, '--tls-key', other.key]);
    assert.equal(mismatched.code, 2);
    assert.match(
      mismatched.stderr,
      /--tls-key .*other\/api\.key is not the key of --tls-cert .*files\/api\.crt/,
    );
    assert.equal(existsSync(dataDir), false);
  });

  test('a certificate from files is what the REST port serves (its fingerprint), and the CLI trusts it', async () => {
    const files = opensslCert(join(cluster.dir, 'served'));
    // Clients trust the operator's certificate (self-signed here) instead of DATA_DIR/ca.crt.
    cluster.restCaFile = files.cert;
    await cluster.startServer(['--tls-cert', files.cert, '--tls-key', files.key]);
    assert.equal(await servedFingerprint(cluster.httpPort, files.cert), files.fingerprint);
    const health = await fetchTrusting(files.cert)(`${cluster.url}/healthz`);
    assert.equal(health.status, 200);
    const r = await fleet(['--server', cluster.url, '--ca-file', files.cert, 'nodes', '-o', 'json'], {
      FLEET_CONFIG: join(cluster.dir, 'none.json'),
      FLEET_TOKEN: cluster.adminToken,
    });
    assert.equal(r.code, 0, r.stderr);
    // The control plane's own CA does not vouch for the operator's certificate.
    const wrong = await fleet(['--server', cluster.url, '--ca-file', cluster.caFile, 'nodes'], {
      FLEET_CONFIG: join(cluster.dir, 'none.json'),
      FLEET_TOKEN: cluster.adminToken,
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /cannot verify the certificate/);
    assert.match(cluster.log('server.log'), new RegExp(`"sha256":"${files.fingerprint}"`));
  });
});
