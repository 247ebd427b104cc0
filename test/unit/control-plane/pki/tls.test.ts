/**
 * The certificates as TLS really uses them: a `node:tls` server with a server certificate from the
 * CA that requires client certificates, on loopback. OpenSSL's own checks (chain, extendedKeyUsage)
 * must already refuse what identity.ts would refuse.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { generateKeyPair, privateKeyPem } from '../../../../common/pki.js';
import type { Ca } from '../../../../control-plane/src/pki/ca.js';
import { type IdentifyResult, identify, trustAnchor } from '../../../../control-plane/src/pki/identity.js';
import { issueServerCertificate, serverNames } from '../../../../control-plane/src/pki/issue.js';
import { agentCert, deps, newCa } from './rig.js';

const ca = await newCa();
const other = await newCa();

async function serverCredentials(by: Ca) {
  const keys = await generateKeyPair();
  const s = await issueServerCertificate(
    by,
    { publicKey: keys.publicKey, names: serverNames('localhost') },
    deps(),
  );
  return { cert: s.certPem, key: await privateKeyPem(keys.privateKey) };
}

/** A mutual-TLS server; what it identified on each accepted connection. */
async function startServer(creds: { cert: string; key: string }) {
  const seen: IdentifyResult[] = [];
  const anchor = trustAnchor(ca.certPem);
  const server = tls.createServer(
    { ...creds, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
    (socket) => {
      seen.push(identify(socket.getPeerCertificate(), anchor, Date.now()));
      socket.end('welcome');
    },
  );
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** 'authorized' when the server's greeting arrives, else the error code that ended it. */
function connect(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    let outcome = 'closed';
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem, ...opts });
    socket.on('data', (d) => {
      if (String(d) === 'welcome') outcome = 'authorized';
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (outcome !== 'authorized') outcome = err.code ?? err.message;
    });
    socket.on('close', () => resolve(outcome));
  });
}

describe('mutual TLS with fleet certificates (loopback)', () => {
  let srv: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    srv = await startServer(await serverCredentials(ca));
  });
  after(() => srv.server.close());

  test('an agent certificate from our CA is accepted, and identify() names the node', async () => {
    const a = await agentCert(ca, 'gpu-01');
    assert.equal(await connect(srv.port, { cert: a.certPem, key: a.keyPem }), 'authorized');
    const last = srv.seen.at(-1)!;
    assert.ok(last.ok);
    assert.equal(last.identity.node, 'gpu-01');
    assert.equal(last.identity.keyFingerprint, a.keyFingerprint);
  });

  test('the agent checks the server by name or address against the pinned CA', async () => {
    const a = await agentCert(ca, 'gpu-01');
    assert.equal(
      await connect(srv.port, { cert: a.certPem, key: a.keyPem, servername: 'localhost' }),
      'authorized',
    );
  });

  test('refused: a certificate from another CA, no certificate, a server certificate as a client', async () => {
    const before = srv.seen.length;
    const foreign = await agentCert(other, 'gpu-01');
    assert.notEqual(await connect(srv.port, { cert: foreign.certPem, key: foreign.keyPem }), 'authorized');
    assert.notEqual(await connect(srv.port, {}), 'authorized');
    const asClient = await serverCredentials(ca);
    assert.notEqual(await connect(srv.port, asClient), 'authorized');
    assert.equal(srv.seen.length, before, 'none reached the application');
  });

  test('the agent refuses a server with an agent certificate, or one from another CA', async () => {
    const a = await agentCert(ca, 'gpu-01');
    const impostor = await agentCert(ca, 'localhost');
    const fake = await startServer({ cert: impostor.certPem, key: impostor.keyPem });
    try {
      const r = await connect(fake.port, { cert: a.certPem, key: a.keyPem });
      assert.equal(r, 'INVALID_PURPOSE');
    } finally {
      fake.server.close();
    }
    const foreign = await startServer(await serverCredentials(other));
    try {
      assert.equal(
        await connect(foreign.port, { cert: a.certPem, key: a.keyPem }),
        'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      );
    } finally {
      foreign.server.close();
    }
  });
});
