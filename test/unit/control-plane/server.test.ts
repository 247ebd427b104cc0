import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { DeploymentDetail, NodeView } from '../../../control-plane/src/api/schemas.js';
import { type RunningServer, runServer } from '../../../control-plane/src/server.js';
import {
  type AgentMessage,
  AgentServiceClient,
  type ControlMessage,
  type DesiredState,
  ServiceState,
} from '../../../proto/gen/fleet/v1/agent.js';
import { enrollNode } from '../../helpers/agent-tls.js';
import { fetchTrusting } from '../../helpers/https.js';

/** Rejects when `p` takes longer than `ms`: a deadline, never a sleep. */
function within<T>(p: Promise<T>, what: string, ms = 3_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Retries `check` until it stops throwing (a few ms in practice; 2 s at most). */
async function eventually<T>(check: () => Promise<T>, ms = 2_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const hello = (node: string, labels: Record<string, string> = {}): AgentMessage => ({
  msg: { $case: 'hello', hello: { node, labels, agentVersion: 'test-1', facts: undefined } },
});

interface Agent {
  call: grpc.ClientDuplexStream<AgentMessage, ControlMessage>;
  received: DesiredState[];
  /** Resolves with the n-th DesiredState received on this stream (0-based). */
  desired(n: number): Promise<DesiredState>;
  /** Resolves with the error the stream ended with. */
  failure: Promise<grpc.ServiceError>;
  /** Resolves when the stream has ended, whatever the status. */
  ended: Promise<grpc.StatusObject>;
}

/** The bootstrap admin token the server wrote on its first start, as a header. */
const adminAuth = (s: RunningServer) => ({
  authorization: `Bearer ${readFileSync(s.adminTokenFile, 'utf8').trim()}`,
});

describe('agent gRPC stream (real server on loopback)', () => {
  let dir: string;
  let server: RunningServer;
  const clients: AgentServiceClient[] = [];
  const calls: grpc.ClientDuplexStream<AgentMessage, ControlMessage>[] = [];

  before(async () => {
    process.env.FLEET_LOG_LEVEL = 'silent';
    dir = mkdtempSync(join(tmpdir(), 'fleet-grpc-'));
    server = await runServer({
      dataDir: join(dir, 'data'),
      listen: '127.0.0.1:0',
      grpcListen: '127.0.0.1:0',
    });
    // Labels seed a node at enrollment (the agent's --label flags travel with the Enroll call).
    for (const [n, labels] of [
      ['nodex', {}],
      ['nodea', { zone: 'a' }],
      ['nodeb', { zone: 'b' }],
    ] as const)
      creds.set(n, (await enrollNode(server, n, labels)).credentials);
  });
  const creds = new Map<string, grpc.ChannelCredentials>();

  after(async () => {
    // End every stream and let the hub detach before closing: see the shutdown test below.
    try {
      for (const c of calls) c.cancel();
      await eventually(async () => assert.equal(await healthz(), 0));
    } finally {
      for (const c of clients) c.close();
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** A stream with `certNode`'s certificate (or `credentials`), saying it is `headerNode`. */
  function connect(headerNode: string, certNode = headerNode, credentials = creds.get(certNode)): Agent {
    const client = new AgentServiceClient(server.grpcAddress, credentials!, {
      'grpc.use_local_subchannel_pool': 1,
    });
    clients.push(client);
    const md = new grpc.Metadata();
    md.set('x-fleet-node', headerNode);
    const call = client.connect(md);
    calls.push(call);
    const received: DesiredState[] = [];
    const waiters: { n: number; resolve: (d: DesiredState) => void }[] = [];
    call.on('data', (m: ControlMessage) => {
      if (m.msg?.$case !== 'desired') return;
      received.push(m.msg.desired);
      for (const w of waiters.filter((x) => x.n < received.length)) w.resolve(received[w.n]!);
    });
    const failure = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    return {
      call,
      received,
      failure,
      ended,
      desired: (n) =>
        within(
          new Promise<DesiredState>((resolve) => {
            if (received[n]) resolve(received[n]);
            else waiters.push({ n, resolve });
          }),
          `desired state #${n} for ${headerNode}`,
        ),
    };
  }

  const http = async <T = Record<string, unknown>>(path: string, init: RequestInit = {}) => {
    const headers = { ...adminAuth(server), ...(init.headers as Record<string, string>) };
    const res = await fetchTrusting(server.caFile)(`${server.httpUrl}${path}`, { ...init, headers });
    return { status: res.status, body: (await res.json()) as T };
  };
  const healthz = async () => (await http<{ agentsConnected: number }>('/healthz')).body.agentsConnected;
  const nodes = async () => (await http<{ nodes: NodeView[] }>('/v1/nodes')).body.nodes;
  const events = async (query = '') =>
    (await http<{ events: { kind: string; node: string }[] }>(`/v1/events${query}`)).body.events;
  const applyPlaybook = (source: string) =>
    http('/v1/apply', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source, file: 'test.yml' }),
    });

  const connectedNodes = async () => (await nodes()).filter((n) => n.connected);

  test('no client certificate is UNAUTHENTICATED', async () => {
    const ca = readFileSync(server.caFile);
    const a = connect('nodex', 'nodex', grpc.credentials.createSsl(ca));
    a.call.write(hello('nodex'));
    const err = await within(a.failure, 'UNAUTHENTICATED');
    assert.equal(err.code, grpc.status.UNAUTHENTICATED);
    assert.match(err.details, /no valid client certificate/);
    assert.deepEqual(a.received, []);
    assert.equal((await connectedNodes()).length, 0, 'nothing connected');
  });

  test('a certificate for A saying it is B (metadata) is PERMISSION_DENIED, with an event', async () => {
    const a = connect('nodey', 'nodex');
    const err = await within(a.failure, 'PERMISSION_DENIED');
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.match(err.details, /nodex.*nodey/);
    await eventually(async () =>
      assert.ok((await events()).some((e) => e.kind === 'agent.refused' && e.node === 'nodex')),
    );
  });

  test('hello for another node than the certificate is PERMISSION_DENIED', async () => {
    const a = connect('nodex');
    a.call.write(hello('nodey'));
    const err = await within(a.failure, 'PERMISSION_DENIED');
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.match(err.details, /nodey/);
    assert.deepEqual(a.received, []);
    assert.equal((await connectedNodes()).length, 0);
  });

  test('a first message other than hello is PERMISSION_DENIED', async () => {
    const a = connect('nodex');
    a.call.write({ msg: { $case: 'heartbeat', heartbeat: { sentAtMs: 1 } } });
    const err = await within(a.failure, 'PERMISSION_DENIED');
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.equal((await connectedNodes()).length, 0);
  });

  // The remaining tests share nodes A and B, in order.
  let a: Agent;
  let b: Agent;

  test('a proper hello gets a DesiredState and shows the node as connected', async () => {
    a = connect('nodea');
    a.call.write(hello('nodea', { zone: 'a' }));
    const first = await a.desired(0);
    assert.deepEqual(first.deployments, []);
    assert.ok(first.version.length > 0);
    const list = await connectedNodes();
    assert.deepEqual(
      list.map((n) => [n.name, n.connected, n.labels]),
      [['nodea', true, { zone: 'a' }]],
    );

    b = connect('nodeb');
    b.call.write(hello('nodeb', { zone: 'b' }));
    assert.deepEqual((await b.desired(0)).deployments, []);
    assert.deepEqual(
      (await connectedNodes()).map((n) => [n.name, n.connected]),
      [
        ['nodea', true],
        ['nodeb', true],
      ],
    );
    assert.equal(await healthz(), 2);
  });

  test('an apply reaches the matching node only; the other never sees that deployment', async () => {
    const res = await applyPlaybook(
      'name: web\nhosts: nodea\nservices:\n  web:\n    image: 127.0.0.1:5000/x/web:1\n    port: 8080\n',
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((res.body as { revision: number }).revision, 1);
    const next = await a.desired(1);
    assert.deepEqual(
      next.deployments.map((d) => [d.name, d.revision, d.services.map((s) => s.image)]),
      [['web', 1, ['127.0.0.1:5000/x/web:1']]],
    );

    // A later apply for B only: whatever the server sent B before it arrives first, on B's stream.
    const other = await applyPlaybook(
      'name: other\nhosts: nodeb\nservices:\n  db:\n    image: 127.0.0.1:5000/x/db:1\n',
    );
    assert.equal(other.status, 200, JSON.stringify(other.body));
    const bNext = await b.desired(1);
    assert.deepEqual(
      bNext.deployments.map((d) => d.name),
      ['other'],
    );
    assert.equal(b.received.length, 2, 'B got its initial state and its own deployment, nothing for web');
    for (const d of b.received) assert.ok(!d.deployments.some((x) => x.name === 'web'));
    assert.equal(a.received.length, 2, "A got nothing for B's deployment");
  });

  test('a status report from A shows under node A only; a spoofed one from B is not attributed to A', async () => {
    const web = a.received[1]!.deployments[0]!;
    a.call.write({
      msg: {
        $case: 'status',
        status: {
          desiredVersion: a.received[1]!.version,
          observedAtMs: 5,
          converged: true,
          events: [
            { atMs: 4, kind: 'container.started', message: 'from a', deployment: 'web', service: 'web' },
          ],
          services: [
            {
              deployment: 'web',
              service: 'web',
              revision: web.revision,
              state: ServiceState.SERVICE_STATE_RUNNING,
              readyReplicas: 1,
              desiredReplicas: 1,
              lastError: '',
              progress: '',
              containers: [
                {
                  id: 'abc',
                  name: 'fleet-nodea-web-web-0',
                  replica: 0,
                  state: 'running',
                  specHash: 'h',
                  createdAtMs: 3,
                  image: web.services[0]!.image,
                  health: '',
                  restartCount: 0,
                  lastProbeError: '',
                  gpus: [],
                  outgoing: false,
                },
              ],
            },
          ],
        },
      },
    });
    b.call.write({
      msg: {
        $case: 'status',
        status: {
          desiredVersion: 'x',
          observedAtMs: 5,
          converged: false,
          events: [
            { atMs: 4, kind: 'spoof', message: 'from b', deployment: 'web', service: 'web' },
            { atMs: 4, kind: 'b.marker', message: 'node-level event from b', deployment: '', service: '' },
          ],
          services: [
            {
              deployment: 'web',
              service: 'web',
              revision: 1,
              state: ServiceState.SERVICE_STATE_FAILED,
              readyReplicas: 0,
              desiredReplicas: 1,
              lastError: 'spoofed',
              containers: [],
              progress: '',
            },
          ],
        },
      },
    });
    // Both reports have landed once A's event and B's node-level marker are in the log.
    const logged = await eventually(async () => {
      const ev = await events('');
      assert.ok(ev.some((e) => e.kind === 'b.marker') && ev.some((e) => e.kind === 'container.started'));
      return ev;
    });
    assert.equal(logged.find((e) => e.kind === 'b.marker')?.node, 'nodeb', 'attributed to the stream');
    assert.ok(!logged.some((e) => e.kind === 'spoof'), 'B cannot write into a deployment it does not run');
    assert.equal(logged.find((e) => e.kind === 'container.started')?.node, 'nodea');

    const d = await http<DeploymentDetail>('/v1/deployments/web');
    assert.equal(d.status, 200);
    assert.deepEqual(
      d.body.nodes.map((n) => n.node),
      ['nodea'],
    );
    const svc = d.body.nodes[0]?.services[0];
    assert.ok(svc);
    assert.equal(svc.service, 'web');
    assert.equal(svc.state, 'running');
    assert.equal(svc.ready, 1);
    assert.equal(svc.lastError, '');
    assert.equal(svc.containers[0]?.id, 'abc');
    assert.equal(d.body.ready, true);
  });

  test('an ack records the acknowledged version', async () => {
    const version = a.received[1]!.version;
    a.call.write({ msg: { $case: 'ack', ack: { desiredVersion: version } } });
    await eventually(async () => {
      const n = (await http<NodeView>('/v1/nodes/nodea')).body;
      assert.equal(n.ackedVersion, version);
      assert.equal(n.desiredVersion, version);
    });
  });

  test('heartbeats move last-seen forward (written in batches, within about a second)', async () => {
    const before = (await http<NodeView>('/v1/nodes/nodea')).body.lastSeenMs;
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 5; i++)
      a.call.write({ msg: { $case: 'heartbeat', heartbeat: { sentAtMs: Date.now() } } });
    await eventually(async () => {
      const n = (await http<NodeView>('/v1/nodes/nodea')).body;
      assert.ok(n.lastSeenMs > before, `last seen ${n.lastSeenMs} after ${before}`);
    }, 3_000);
  });

  test('a newer stream for the same node replaces the older one without marking it disconnected', async () => {
    const b2 = connect('nodeb');
    b2.call.write(hello('nodeb', { zone: 'b' }));
    const state = await b2.desired(0);
    assert.deepEqual(
      state.deployments.map((d) => d.name),
      ['other'],
    );
    await within(b.ended, 'the old stream of nodeb to end');
    const list = await nodes();
    assert.equal(list.find((n) => n.name === 'nodeb')?.connected, true);
    assert.equal(await healthz(), 2);
    b = b2;
  });

  test('closing the stream marks the node disconnected', async () => {
    a.call.end();
    await within(a.ended, 'nodea stream to end');
    await eventually(async () => {
      const list = await nodes();
      assert.equal(list.find((n) => n.name === 'nodea')?.connected, false);
    });
    assert.equal((await nodes()).find((n) => n.name === 'nodeb')?.connected, true);
    assert.equal(await healthz(), 1);
    const ev = await events();
    assert.ok(ev.some((e) => e.kind === 'node.disconnected' && e.node === 'nodea'));
  });
});

describe('control plane shutdown', () => {
  test('close() with an agent still attached raises no error afterwards', {}, async () => {
    process.env.FLEET_LOG_LEVEL = 'silent';
    const dir = mkdtempSync(join(tmpdir(), 'fleet-grpc-close-'));
    const server = await runServer({
      dataDir: join(dir, 'data'),
      listen: '127.0.0.1:0',
      grpcListen: '127.0.0.1:0',
    });
    const { credentials } = await enrollNode(server, 'nodec');
    const client = new AgentServiceClient(server.grpcAddress, credentials, {
      'grpc.use_local_subchannel_pool': 1,
    });
    const errors: unknown[] = [];
    const onUncaught = (err: unknown) => errors.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const md = new grpc.Metadata();
      md.set('x-fleet-node', 'nodec');
      const call = client.connect(md);
      const first = new Promise((resolve) => call.once('data', resolve));
      const ended = new Promise((resolve) => call.on('status', resolve));
      call.on('error', () => {});
      call.write(hello('nodec'));
      await within(first, 'the first desired state');
      await server.close();
      await within(ended, 'the stream to end');
      // Give the server-side stream events a moment to fire (they follow the shutdown closely).
      const until = Date.now() + 200;
      while (errors.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(errors.map(String), []);
    } finally {
      process.off('uncaughtException', onUncaught);
      client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('server wiring: apply waits on the rollout watcher, check mode asks the agent', () => {
  let dir: string;
  let server: RunningServer;
  let client: AgentServiceClient;
  let call: grpc.ClientDuplexStream<AgentMessage, ControlMessage>;
  /** How the fake agent answers: `ack` takes each desired state, `hold` reports failing preflight. */
  let mode: 'ack' | 'hold' = 'ack';
  const CHECK = { name: 'gpu-count', ok: false, message: 'needs 1 GPU, has 0', service: 'web' };
  const PREVIEW = {
    containers: [
      { action: 'replace', service: 'web', replica: 0, name: 'c', ids: ['abc'], reason: 'spec changed' },
    ],
    images: [{ image: '127.0.0.1:5000/x/web:4', present: false }],
    proxyDiff: '--- a\n+++ b\n',
    notes: [],
    error: '',
  };

  before(async () => {
    process.env.FLEET_LOG_LEVEL = 'silent';
    dir = mkdtempSync(join(tmpdir(), 'fleet-wiring-'));
    server = await runServer({
      dataDir: join(dir, 'data'),
      listen: '127.0.0.1:0',
      grpcListen: '127.0.0.1:0',
    });
    const { credentials } = await enrollNode(server, 'nodew');
    client = new AgentServiceClient(server.grpcAddress, credentials, {
      'grpc.use_local_subchannel_pool': 1,
    });
    const md = new grpc.Metadata();
    md.set('x-fleet-node', 'nodew');
    call = client.connect(md);
    call.on('error', () => {});
    const first = new Promise((resolve) => call.once('data', resolve));
    call.on('data', (m: ControlMessage) => answer(m));
    call.write(hello('nodew'));
    await within(first, 'the first desired state');
  });

  after(async () => {
    call.cancel();
    client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function answer(m: ControlMessage) {
    if (m.msg?.$case === 'preflight') {
      const { requestId, desired, previewDeployment } = m.msg.preflight;
      const result = { desiredVersion: desired?.version ?? '', ok: false, checks: [CHECK], checkedAtMs: 1 };
      const preview = previewDeployment
        ? { ...PREVIEW, notes: [`preview of ${previewDeployment}`] }
        : undefined;
      call.write({ msg: { $case: 'preflightResult', preflightResult: { requestId, result, preview } } });
    }
    if (m.msg?.$case !== 'desired') return;
    const version = m.msg.desired.version;
    // A real agent acks every state it takes, the empty one of its hello too: until it does, the
    // control plane holds newer pushes back (one in flight per node).
    if (m.msg.desired.deployments.length === 0) {
      call.write({ msg: { $case: 'ack', ack: { desiredVersion: version } } });
      return;
    }
    // Answer a little later, as a real agent persisting the state would.
    setTimeout(() => {
      if (mode === 'ack') call.write({ msg: { $case: 'ack', ack: { desiredVersion: version } } });
      else
        call.write({
          msg: {
            $case: 'status',
            status: {
              desiredVersion: version,
              services: [],
              observedAtMs: 1,
              events: [],
              converged: false,
              preflight: { desiredVersion: version, ok: false, checks: [CHECK], checkedAtMs: 1 },
            },
          },
        });
    }, 50);
  }

  // The fake agent never reports its services healthy, so each revision's rollout is still running
  // when the next apply comes: each apply names the revision it expects, superseding that rollout.
  let at = 0;
  const apply = async (image: string, check = false, diff?: boolean) => {
    const started = Date.now();
    const res = await fetchTrusting(server.caFile)(`${server.httpUrl}/v1/apply`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminAuth(server) },
      body: JSON.stringify({
        source: `name: web\nhosts: all\nservices:\n  web:\n    image: 127.0.0.1:5000/x/web:${image}\n`,
        file: 'web.yml',
        check,
        diff,
        expectRevision: at,
      }),
    });
    const body = (await res.json()) as {
      revision: number;
      batches?: string[][];
      nodes: {
        node: string;
        preflight?: { ok: boolean; message: string };
        preview?: unknown;
        services: { changes?: unknown[] }[];
      }[];
    };
    if (res.status === 200 && !check) at = body.revision;
    return { status: res.status, body, ms: Date.now() - started };
  };

  test('a plain apply answers once the agent acked (well before the 3 s bound)', async () => {
    mode = 'ack';
    const r = await apply('1');
    assert.equal(r.status, 200);
    assert.ok(r.ms >= 40 && r.ms < 2_000, `answered after ${r.ms} ms`);
    assert.equal(r.body.nodes[0]?.preflight, undefined);
  });

  test('a plain apply held back by preflight says so at once', async () => {
    mode = 'hold';
    const r = await apply('2');
    assert.equal(r.status, 200);
    assert.ok(r.ms < 2_000, `answered after ${r.ms} ms`);
    assert.deepEqual(r.body.nodes[0]?.preflight, {
      checked: true,
      ok: false,
      message: 'held back by preflight',
      checks: [CHECK],
    });
  });

  test('check mode asks the agent over its stream and returns its answer', async () => {
    const r = await apply('3', true);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.nodes[0]?.preflight, {
      checked: true,
      ok: false,
      message: 'checks fail',
      checks: [CHECK],
    });
  });

  test('check with diff: the agent previews the deployment; the reply carries it, the field diff and the batches', async () => {
    const r = await apply('4', true, true);
    assert.equal(r.status, 200);
    const n = r.body.nodes[0]!;
    assert.deepEqual(n.preview, { ...PREVIEW, notes: ['preview of web'] });
    assert.deepEqual(n.services[0]?.changes, [
      { field: 'image', change: 'changed', from: '127.0.0.1:5000/x/web:2', to: '127.0.0.1:5000/x/web:4' },
    ]);
    assert.deepEqual(r.body.batches, [['nodew']]);
    const plain = await apply('4', true);
    assert.equal(plain.body.nodes[0]?.preview, undefined, 'no preview without diff');
  });
});
