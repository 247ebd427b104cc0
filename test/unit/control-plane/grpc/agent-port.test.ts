/**
 * The agent port as agents dial it, over real TLS on loopback:
 * - dialing an IP address sends no IP as the TLS server name (Node's DEP0123), yet the server's
 *   certificate is still checked against that IP;
 * - a message above the port's receive limit (4 MiB) is answered RESOURCE_EXHAUSTED, before
 *   enrollment and on an agent's stream alike, and the control plane stays up.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  caCredentials,
  dialOptions,
  mtlsCredentials,
  SNI_FOR_IP,
} from '../../../../agent/src/enroll/client.js';
import { generateKeyPair, privateKeyPem } from '../../../../common/pki.js';
import { issueServerCertificate } from '../../../../control-plane/src/pki/issue.js';
import { type RunningServer, runServer } from '../../../../control-plane/src/server.js';
import {
  type AgentMessage,
  AgentServiceClient,
  AgentServiceService,
} from '../../../../proto/gen/fleet/v1/agent.js';
import { enrollNode } from '../../../helpers/agent-tls.js';
import { fetchTrusting } from '../../../helpers/https.js';
import { agentCert, deps, newCa } from '../pki/rig.js';

process.env.FLEET_LOG_LEVEL = 'silent';

/** Every process warning with its code, as Node emits them (DEP0123 among them). */
const warnings: string[] = [];
process.on('warning', (w: Error & { code?: string }) => warnings.push(w.code ?? w.name));
/** Deprecation warnings are emitted on the next tick; let them land. */
const settle = () => new Promise((r) => setTimeout(r, 50));

const status = (err: grpc.ServiceError | null) => (err ? grpc.status[err.code] : 'OK');

describe('dialing the agent port by IP address', () => {
  const ca = newCa();
  /** A bare gRPC server on 127.0.0.1 presenting a certificate for `ips` (and localhost). */
  async function serverFor(ips: string[]) {
    const keys = await generateKeyPair();
    const issued = await issueServerCertificate(
      await ca,
      { publicKey: keys.publicKey, names: { dns: ['localhost'], ips } },
      deps(),
    );
    const server = new grpc.Server();
    server.addService(AgentServiceService, {
      getCa: (_c: unknown, cb: grpc.sendUnaryData<{ caPem: string }>) => cb(null, { caPem: 'x' }),
    } as unknown as grpc.UntypedServiceImplementation);
    const creds = grpc.ServerCredentials.createSsl(null, [
      {
        cert_chain: Buffer.from(issued.certPem),
        private_key: Buffer.from(await privateKeyPem(keys.privateKey)),
      },
    ]);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))),
    );
    return { server, address: `127.0.0.1:${port}` };
  }

  async function getCa(address: string, options: grpc.ChannelOptions = dialOptions(address)) {
    const node = await agentCert(await ca, 'dial-1');
    const tls = { caPem: (await ca).certPem, certPem: node.certPem, keyPem: node.keyPem };
    const client = new AgentServiceClient(address, mtlsCredentials(tls, address), options);
    try {
      return await new Promise<{ status: string; details?: string }>((resolve) =>
        client.getCa({}, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (err) =>
          resolve({ status: status(err), details: err?.details }),
        ),
      );
    } finally {
      client.close();
    }
  }

  test('the placeholder name is sent for an IP (v4 or v6), nothing for a DNS name', () => {
    assert.deepEqual(dialOptions('127.0.0.1:7443'), { 'grpc.ssl_target_name_override': SNI_FOR_IP });
    assert.deepEqual(dialOptions('[::1]:7443'), { 'grpc.ssl_target_name_override': SNI_FOR_IP });
    assert.deepEqual(dialOptions('cp.example:7443'), {});
  });

  test('a certificate for 127.0.0.1: the call works and Node prints no DEP0123', async () => {
    const s = await serverFor(['127.0.0.1']);
    try {
      assert.equal((await getCa(s.address)).status, 'OK');
      await settle();
      assert.deepEqual(
        warnings.filter((w) => w === 'DEP0123'),
        [],
      );
    } finally {
      s.server.forceShutdown();
    }
  });

  test('a certificate for another address is still refused: the IP is checked', async () => {
    const s = await serverFor(['10.9.9.9']);
    try {
      const r = await getCa(s.address);
      assert.equal(r.status, 'UNAVAILABLE');
      assert.match(r.details ?? '', /IP: 127\.0\.0\.1 is not in the cert's list/);
    } finally {
      s.server.forceShutdown();
    }
  });

  // Last: Node warns once per process, so this control case must come after the others.
  test('control: without dialOptions, grpc-js sends the IP as server name and Node warns', async () => {
    const s = await serverFor(['127.0.0.1']);
    try {
      assert.equal((await getCa(s.address, {})).status, 'OK');
      await settle();
      assert.ok(warnings.includes('DEP0123'), `warnings: ${warnings.join(', ')}`);
    } finally {
      s.server.forceShutdown();
    }
  });
});

describe('a message above the agent port limit (4 MiB)', () => {
  let dir: string;
  let server: RunningServer;
  const FIVE_MIB = 'x'.repeat(5 * 1024 * 1024);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-agent-port-'));
    server = await runServer({
      dataDir: join(dir, 'data'),
      listen: '127.0.0.1:0',
      grpcListen: '127.0.0.1:0',
    });
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const healthz = async () => (await fetchTrusting(server.caFile)(`${server.httpUrl}/healthz`)).status;

  test('before enrollment: Enroll with a 5 MiB request is RESOURCE_EXHAUSTED, naming the sizes', async () => {
    const caPem = readFileSync(server.caFile, 'utf8');
    const client = new AgentServiceClient(
      server.grpcAddress,
      caCredentials(caPem, server.grpcAddress),
      dialOptions(server.grpcAddress),
    );
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.enroll(
          { caHash: '', tokenId: '', tokenSecret: '', node: 'big', csrPem: FIVE_MIB, labels: {} },
          new grpc.Metadata(),
          { deadline: Date.now() + 10_000 },
          (e) => resolve(e),
        ),
      );
      assert.equal(status(err), 'RESOURCE_EXHAUSTED', err?.details);
      assert.match(err?.details ?? '', /larger than max \(\d+ vs 4194304\)/);
    } finally {
      client.close();
    }
    assert.equal(await healthz(), 200, 'the control plane stays up');
  });

  test("on an enrolled agent's stream: the stream ends RESOURCE_EXHAUSTED; the agent reconnects fine", async () => {
    const agent = await enrollNode(server, 'big-1');
    const open = (what: AgentMessage) => {
      const client = new AgentServiceClient(server.grpcAddress, agent.credentials, {
        ...dialOptions(server.grpcAddress),
        'grpc.use_local_subchannel_pool': 1,
      });
      const md = new grpc.Metadata();
      md.set('x-fleet-node', 'big-1');
      const call = client.connect(md);
      const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      const first = new Promise<unknown>((resolve) => call.once('data', resolve));
      call.on('error', () => {});
      call.write(what);
      return { client, call, ended, first };
    };
    const hello = (labels: Record<string, string>): AgentMessage => ({
      msg: { $case: 'hello', hello: { node: 'big-1', labels, agentVersion: 't', facts: undefined } },
    });
    const big = open(hello({ huge: FIVE_MIB }));
    try {
      const s = await big.ended;
      assert.equal(grpc.status[s.code], 'RESOURCE_EXHAUSTED');
      assert.match(s.details, /larger than max/);
    } finally {
      big.client.close();
    }
    assert.equal(await healthz(), 200, 'the control plane stays up');
    const ok = open(hello({}));
    try {
      await ok.first;
    } finally {
      ok.call.cancel();
      ok.client.close();
    }
  });
});
