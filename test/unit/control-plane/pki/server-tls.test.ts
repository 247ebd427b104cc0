/**
 * What the control plane serves with: the REST API on HTTPS only (its own certificate or the
 * operator's files), and the self-issued certificate reissued while it runs, on the REST port and
 * on the agent port alike. Real listeners on loopback, real TLS.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import tls from 'node:tls';
import { type ClientError, FleetClient } from '../../../../control-plane/src/api/client.js';
import { loadCertificateFiles, serverRenewAt } from '../../../../control-plane/src/pki/server-tls.js';
import { type RunningServer, runServer } from '../../../../control-plane/src/server.js';
import { fetchTrusting } from '../../../helpers/https.js';
import { selfSignedPair } from '../../../helpers/tls-pair.js';
import { tmpDir } from './rig.js';

process.env.FLEET_LOG_LEVEL = 'silent';
const root = tmpDir('server-tls');
let n = 0;

/** A self-signed certificate and key from openssl (test/helpers/tls-pair.ts), in files as an operator brings them. */
function opensslCert(name: string) {
  const dir = join(root, `ossl${n++}`);
  mkdirSync(dir, { recursive: true });
  const pair = selfSignedPair(name);
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  writeFileSync(cert, pair.cert);
  writeFileSync(key, pair.key);
  const fingerprint = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], {
    encoding: 'utf8',
  })
    .trim()
    .replace(/^.*=/, '');
  return { cert, key, fingerprint };
}

/** The certificate a TLS server on `port` presents, verified against `caPem` (ALPN as given). */
function peerCertificate(port: number, caPem: string, alpn?: string[]): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: caPem, ALPNProtocols: alpn }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve(c);
    });
    s.on('error', reject);
  });
}

const portOf = (url: string) => Number(new URL(url).port);
const grpcPort = (s: RunningServer) => Number(s.grpcAddress.split(':').at(-1));

async function start(extra: Partial<Parameters<typeof runServer>[0]> = {}) {
  const dataDir = join(root, `cp${n++}`);
  const server = await runServer({ dataDir, listen: '127.0.0.1:0', grpcListen: '127.0.0.1:0', ...extra });
  return { server, dataDir };
}

describe('--tls-cert / --tls-key are checked before anything listens', () => {
  const good = opensslCert('api.example');
  const other = opensslCert('other.example');

  test('a good pair loads, with the fingerprint openssl prints', () => {
    const f = loadCertificateFiles(good.cert, good.key, Date.now());
    assert.equal(f.fingerprint256, good.fingerprint);
  });

  const garbage = join(root, 'garbage.pem');
  writeFileSync(garbage, 'not a pem\n');
  for (const [what, cert, key, message] of [
    ['a missing certificate', join(root, 'nope.crt'), good.key, /--tls-cert .*nope\.crt: cannot read it/],
    ['a missing key', good.cert, join(root, 'nope.key'), /--tls-key .*nope\.key: cannot read it/],
    ['a folder as the key', good.cert, root, /--tls-key .*: cannot read it \(not a regular file\)/],
    ['not a certificate', garbage, good.key, /--tls-cert .*garbage\.pem: not a PEM certificate/],
    ['not a key', good.cert, garbage, /--tls-key .*garbage\.pem: not a PEM private key/],
    ['the key of another certificate', good.cert, other.key, /is not the key of --tls-cert/],
  ] as const)
    test(`refused: ${what}`, () => {
      assert.throws(() => loadCertificateFiles(cert, key, Date.now()), message);
    });

  test('refused: out of date (expired, or not valid yet)', () => {
    assert.throws(() => loadCertificateFiles(good.cert, good.key, Date.now() + 3 * 86_400_000), /expired on/);
    assert.throws(() => loadCertificateFiles(good.cert, good.key, Date.now() - 86_400_000), /not valid yet/);
  });

  test('runServer with bad files or only one of them: refused, and no data folder is created', async () => {
    const dataDir = join(root, 'never');
    const base = { dataDir, listen: '127.0.0.1:0', grpcListen: '127.0.0.1:0' };
    await assert.rejects(
      runServer({ ...base, tlsCertFile: good.cert }),
      /--tls-cert and --tls-key go together/,
    );
    await assert.rejects(
      runServer({ ...base, tlsCertFile: good.cert, tlsKeyFile: other.key }),
      /is not the key of/,
    );
    assert.equal(existsSync(dataDir), false);
  });
});

describe('the REST API speaks TLS only', () => {
  test('plain HTTP is refused; without the CA the client names --ca-file; with it, it works', async () => {
    const { server } = await start();
    try {
      assert.match(server.httpUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(server.restCertificate, 'self-issued');
      const plain = new Promise<number>((resolve, reject) =>
        request(`http://127.0.0.1:${portOf(server.httpUrl)}/healthz`, (res) => resolve(res.statusCode ?? 0))
          .on('error', reject)
          .end(),
      );
      await assert.rejects(plain, 'a plaintext request gets no HTTP answer');
      const token = readFileSync(server.adminTokenFile, 'utf8').trim();
      const httpUrl = server.httpUrl.replace('https:', 'http:');
      await assert.rejects(
        new FleetClient(httpUrl, { token }).nodes(),
        /serves HTTPS only: use --server https:/,
      );
      await assert.rejects(
        new FleetClient(server.httpUrl, { token }).nodes(),
        /cannot verify the certificate .*--ca-file DATA_DIR\/ca\.crt or FLEET_CA_FILE/,
      );
      const ca = readFileSync(server.caFile, 'utf8');
      assert.deepEqual(await new FleetClient(server.httpUrl, { token, ca }).nodes(), { nodes: [] });
    } finally {
      await server.close();
    }
  });

  test('a body over the limit: the CLI announces it and gets the 413 instead of a reset mid-upload', async () => {
    const { server } = await start();
    try {
      const token = readFileSync(server.adminTokenFile, 'utf8').trim();
      const ca = readFileSync(server.caFile, 'utf8');
      const client = new FleetClient(server.httpUrl, { token, ca });
      const big = `name: big\nhosts: all\n# ${'x'.repeat(2 * 1024 * 1024)}\n`;
      for (let i = 0; i < 5; i++)
        await assert.rejects(client.apply(big, 'big.yaml', false), (err: ClientError) => {
          assert.equal(err.status, 413);
          assert.match(err.message, /larger than the limit of 1048576 bytes \(fleet server --body-limit\)/);
          return true;
        });
      // The 413 comes before any of the body: announced and never sent, it is still answered.
      const early = await new Promise<number>((resolve, reject) => {
        const r = httpsRequest(
          `${server.httpUrl}/v1/apply`,
          {
            method: 'POST',
            ca,
            headers: {
              authorization: `Bearer ${token}`,
              expect: '100-continue',
              'content-length': '2097152',
            },
          },
          (res) => resolve(res.statusCode ?? 0),
        );
        r.on('continue', () => reject(new Error('100 Continue for a body over the limit')));
        r.on('error', reject);
        r.setTimeout(5_000, () => reject(new Error('no answer before the body')));
        r.flushHeaders();
      });
      assert.equal(early, 413);
      // A body within the limit announced the same way goes through Fastify as usual.
      const fine = `name: fine\nhosts: all\n# ${'x'.repeat(100 * 1024)}\n`;
      await assert.rejects(
        client.apply(fine, 'fine.yaml', false),
        (err: ClientError) => err.status !== 413 && /^fine\.yaml: /.test(err.message),
      );
    } finally {
      await server.close();
    }
  });

  test('a certificate from files is what the REST port serves; the agent port keeps the CA-issued one', async () => {
    const files = opensslCert('api.example');
    const { server } = await start({ tlsCertFile: files.cert, tlsKeyFile: files.key });
    try {
      assert.equal(server.restCertificate, 'files');
      const served = await peerCertificate(portOf(server.httpUrl), readFileSync(files.cert, 'utf8'));
      assert.equal(served.fingerprint256, files.fingerprint);
      const res = await fetchTrusting(files.cert)(`${server.httpUrl}/healthz`);
      assert.equal(res.status, 200);
      const agentPort = await peerCertificate(grpcPort(server), server.tls.caPem, ['h2']);
      assert.match(agentPort.subjectaltname ?? '', /URI:fleet:\/\/server\//);
      assert.notEqual(agentPort.fingerprint256, files.fingerprint);
    } finally {
      await server.close();
    }
  });
});

describe('the self-issued certificate is reissued while the server runs', () => {
  test('renewal moment: 70% of the life from the moment of issue, not from the back-dated notBefore', () => {
    const issued = 1_000_000_000_000;
    const notBefore = issued - 5 * 60_000;
    assert.equal(serverRenewAt(notBefore, issued + 10_000), issued + 7_000);
    assert.equal(serverRenewAt(notBefore, issued + 90 * 86_400_000), issued + 63 * 86_400_000);
  });

  test('a 3 s certificate: new handshakes on both ports get a new one, verified by the same CA', async () => {
    const { server } = await start({ serverCertLifetimeMs: 3_000 });
    try {
      const ca = server.tls.caPem;
      const rest1 = await peerCertificate(portOf(server.httpUrl), ca);
      const grpc1 = await peerCertificate(grpcPort(server), ca, ['h2']);
      assert.equal(rest1.fingerprint256, grpc1.fingerprint256, 'one self-issued certificate for both ports');
      const deadline = Date.now() + 8_000;
      let rest2 = rest1;
      while (rest2.fingerprint256 === rest1.fingerprint256 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        rest2 = await peerCertificate(portOf(server.httpUrl), ca);
      }
      assert.notEqual(
        rest2.fingerprint256,
        rest1.fingerprint256,
        'the REST port serves a reissued certificate',
      );
      const grpc2 = await peerCertificate(grpcPort(server), ca, ['h2']);
      assert.notEqual(grpc2.fingerprint256, grpc1.fingerprint256, 'the agent port serves it too');
      assert.ok(Date.parse(rest2.valid_to) > Date.parse(rest1.valid_to));
      const res = await fetchTrusting(server.caFile)(`${server.httpUrl}/healthz`);
      assert.equal(res.status, 200);
    } finally {
      await server.close();
    }
  });
});
