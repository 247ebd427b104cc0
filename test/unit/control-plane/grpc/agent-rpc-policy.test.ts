/**
 * Which certificate may call which agent RPC, as a table over real mutual TLS on loopback (after
 * Nomad's RPC TLS enforcement tests): a real control plane, and callers holding no certificate, an
 * enrolled agent's, the server's own (role server), one from another CA, and an expired one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createCsr, nodeKeyFromPem } from '../../../../agent/src/enroll/keys.js';
import { parseJoinToken } from '../../../../common/join-token.js';
import { KEY_ALGORITHM, x509 } from '../../../../common/pki.js';
import { AGENT_RPC_POLICY } from '../../../../control-plane/src/grpc/agent-service.js';
import { type Ca, loadCa } from '../../../../control-plane/src/pki/ca.js';
import { type RunningServer, runServer } from '../../../../control-plane/src/server.js';
import { AgentServiceClient, type ControlMessage } from '../../../../proto/gen/fleet/v1/agent.js';
import { createJoinToken, enrollNode } from '../../../helpers/agent-tls.js';
import { agentCert, deps, newCa, nodeCsr } from '../pki/rig.js';

type Caller = 'none' | 'agent' | 'user-role' | 'server-role' | 'other-ca' | 'expired';
type Rpc = 'getCa' | 'enroll' | 'renew' | 'connect';
type Outcome = 'OK' | keyof typeof grpc.status;

/**
 * The table under test: every RPC × every kind of caller. A server-role certificate, a foreign or
 * an expired one fail OpenSSL's verification (purpose clientAuth, chain, validity), so grpc-js
 * shows the call no certificate at all: UNAUTHENTICATED. A certificate that verifies but may not
 * act (another node, another key) is PERMISSION_DENIED (server.test.ts, e2e enrollment). A "user"
 * certificate from the right CA, valid for client auth and naming the agent's node, passes TLS but
 * names no agent: UNAUTHENTICATED (Nomad CVE-2020-7956: the right CA is not the right role).
 */
const EXPECTED: Record<Rpc, Record<Caller, Outcome>> = {
  getCa: { none: 'OK', agent: 'OK', 'user-role': 'OK', 'server-role': 'OK', 'other-ca': 'OK', expired: 'OK' },
  enroll: {
    none: 'OK',
    agent: 'OK',
    'user-role': 'OK',
    'server-role': 'OK',
    'other-ca': 'OK',
    expired: 'OK',
  },
  renew: {
    none: 'UNAUTHENTICATED',
    agent: 'OK',
    'user-role': 'UNAUTHENTICATED',
    'server-role': 'UNAUTHENTICATED',
    'other-ca': 'UNAUTHENTICATED',
    expired: 'UNAUTHENTICATED',
  },
  connect: {
    none: 'UNAUTHENTICATED',
    agent: 'OK',
    'user-role': 'UNAUTHENTICATED',
    'server-role': 'UNAUTHENTICATED',
    'other-ca': 'UNAUTHENTICATED',
    expired: 'UNAUTHENTICATED',
  },
};

/**
 * A certificate from the control plane's own CA that passes TLS client verification (clientAuth
 * EKU, in date) but whose role URI says `user`, not `agent`: what an operator's client
 * certificate would look like if users were given certificates.
 */
async function userRoleCert(ca: Ca, node: string) {
  const n = await nodeCsr();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0badc0de01',
    subject: [{ CN: [node] }, { OU: ['user'] }, { O: ['fleet'] }],
    issuer: ca.cert.subjectName,
    publicKey: n.keys.publicKey,
    signingKey: ca.signingKey,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingAlgorithm: KEY_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `fleet://user/${node}` }], false),
    ],
  });
  return { cert: cert.toString('pem'), key: n.keyPem };
}

interface Holder {
  node: string;
  cert?: string;
  key?: string;
}

describe('agent RPCs: certificate role × RPC (real mutual TLS)', () => {
  let dir: string;
  let server: RunningServer;
  let caPem: Buffer;
  const holders = {} as Record<Caller, Holder>;
  let enrolled = 0;

  before(async () => {
    process.env.FLEET_LOG_LEVEL = 'silent';
    // Not rig's tmpDir: its after() registered inside this hook would run as the hook ends.
    dir = mkdtempSync(join(tmpdir(), 'fleet-rpc-policy-'));
    server = await runServer({
      dataDir: join(dir, 'data'),
      listen: '127.0.0.1:0',
      grpcListen: '127.0.0.1:0',
    });
    caPem = readFileSync(server.caFile);
    const agent = await enrollNode(server, 'policy-agent');
    const foreign = await agentCert(await newCa(), 'policy-agent');
    const ca = await loadCa(join(dir, 'data'), Date.now());
    const past = Date.now() - 40 * 24 * 3_600_000;
    const expired = await agentCert(
      ca,
      'policy-agent',
      deps(() => past),
    );
    holders['user-role'] = { node: 'policy-agent', ...(await userRoleCert(ca, 'policy-agent')) };
    holders.none = { node: 'policy-agent' };
    holders.agent = { node: 'policy-agent', cert: agent.certPem, key: agent.keyPem };
    holders['server-role'] = {
      node: 'control-plane',
      cert: readFileSync(server.serverCertFile, 'utf8'),
      key: readFileSync(server.serverKeyFile, 'utf8'),
    };
    holders['other-ca'] = { node: 'policy-agent', cert: foreign.certPem, key: foreign.keyPem };
    holders.expired = { node: 'policy-agent', cert: expired.certPem, key: expired.keyPem };
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (h: Holder) =>
    new AgentServiceClient(
      server.grpcAddress,
      h.cert
        ? grpc.credentials.createSsl(caPem, Buffer.from(h.key!), Buffer.from(h.cert))
        : grpc.credentials.createSsl(caPem),
      { 'grpc.use_local_subchannel_pool': 1 },
    );

  const outcome = (err: grpc.ServiceError | null): Outcome =>
    err ? (grpc.status[err.code] as keyof typeof grpc.status) : 'OK';
  const deadline = () => ({ deadline: Date.now() + 5_000 });

  async function call(rpc: Rpc, h: Holder): Promise<Outcome> {
    const c = client(h);
    const md = new grpc.Metadata();
    md.set('x-fleet-node', h.node);
    try {
      if (rpc === 'getCa') return await new Promise((r) => c.getCa({}, md, deadline(), (e) => r(outcome(e))));
      if (rpc === 'enroll') {
        const t = parseJoinToken(await createJoinToken(server));
        assert.ok(t.ok);
        const { csrPem } = await nodeCsr();
        const req = {
          caHash: t.token.caHash,
          tokenId: t.token.id,
          tokenSecret: t.token.secret,
          node: `policy-new-${enrolled++}`,
          csrPem,
          labels: {},
        };
        return await new Promise((r) => c.enroll(req, md, deadline(), (e) => r(outcome(e))));
      }
      if (rpc === 'renew') {
        const csrPem = h.key
          ? await createCsr(await nodeKeyFromPem(h.key), h.node)
          : (await nodeCsr()).csrPem;
        return await new Promise((r) => c.renew({ csrPem }, md, deadline(), (e) => r(outcome(e))));
      }
      return await new Promise((resolve) => {
        const s = c.connect(md, deadline());
        s.on('data', (m: ControlMessage) => {
          if (m.msg?.$case === 'desired') {
            resolve('OK');
            s.cancel();
          }
        });
        s.on('error', (e: grpc.ServiceError) => resolve(outcome(e)));
        s.write({
          msg: { $case: 'hello', hello: { node: h.node, labels: {}, agentVersion: 't', facts: undefined } },
        });
      });
    } finally {
      c.close();
    }
  }

  test('the table covers every method of the service', () => {
    assert.deepEqual(Object.keys(EXPECTED).sort(), Object.keys(AGENT_RPC_POLICY).sort());
  });

  for (const [rpc, row] of Object.entries(EXPECTED) as [Rpc, Record<Caller, Outcome>][]) {
    for (const [caller, want] of Object.entries(row) as [Caller, Outcome][]) {
      test(`${rpc} with ${caller === 'none' ? 'no' : `a ${caller}`} certificate: ${want}`, async () => {
        assert.equal(await call(rpc, holders[caller]), want);
      });
    }
  }
});
