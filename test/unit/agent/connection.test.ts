import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Backoff } from '../../../agent/src/backoff.js';
import { Connection } from '../../../agent/src/connection.js';
import { createLogger } from '../../../common/log.js';
import {
  type AgentMessage,
  AgentServiceService,
  type ControlMessage,
} from '../../../proto/gen/fleet/v1/agent.js';

type Stream = grpc.ServerDuplexStream<AgentMessage, ControlMessage>;

/**
 * A real gRPC server on loopback that welcomes each hello (with `windowMs`, when given), sends a
 * desired state, then ends the stream: the agent's connection must redial, and when it does
 * shows whether it honoured the window.
 */
async function server(windowMs: number | undefined) {
  const hellos: number[] = [];
  const s = new grpc.Server();
  s.addService(AgentServiceService, {
    connect: (call: Stream) => {
      call.on('data', (m: AgentMessage) => {
        if (m.msg?.$case !== 'hello') return;
        hellos.push(performance.now());
        if (windowMs !== undefined)
          call.write({ msg: { $case: 'welcome', welcome: { reconnectWindowMs: windowMs } } });
        call.write({ msg: { $case: 'desired', desired: { version: 'v', deployments: [] } } });
        setTimeout(() => call.end(), 20);
      });
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { hellos, address: `127.0.0.1:${port}`, close: () => s.forceShutdown() };
}

function connect(address: string) {
  const conn = new Connection({
    address,
    credentials: grpc.credentials.createInsecure(),
    node: 'n1',
    log: createLogger('test', 'silent'),
    hello: async () => ({ node: 'n1', labels: {}, agentVersion: 't', facts: undefined }),
    onDesired: () => {},
    latestReport: () => undefined,
    backoff: new Backoff(250, 10_000, () => 0.1),
    random: () => 0.1,
  });
  conn.start();
  return conn;
}

async function secondHello(hellos: number[]) {
  for (let i = 0; i < 100 && hellos.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(hellos.length >= 2, 'the agent redialed');
  return hellos[1]! - hellos[0]!;
}

describe("Connection: redials spread over the control plane's window", () => {
  const open: { close(): void }[] = [];
  after(() => {
    for (const o of open) o.close();
  });

  test('without a welcome, a lost stream is redialed after the backoff (tenths of its 250 ms)', async () => {
    const s = await server(undefined);
    open.push(s);
    const conn = connect(s.address);
    open.push({ close: () => conn.stop() });
    const gap = await secondHello(s.hellos);
    assert.ok(gap < 300, `redialed after ${gap.toFixed(0)} ms`);
  });

  test('with a 4 s window, the redial waits a random share of it (pinned 0.1: 400 ms)', async () => {
    const s = await server(4_000);
    open.push(s);
    const conn = connect(s.address);
    open.push({ close: () => conn.stop() });
    const gap = await secondHello(s.hellos);
    assert.ok(gap >= 400 && gap < 1_500, `redialed after ${gap.toFixed(0)} ms`);
  });
});
