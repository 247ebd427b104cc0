import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { createLogger } from '../../../../common/log.js';
import type { AgentAuthenticator } from '../../../../control-plane/src/grpc/auth.js';
import { EncodedMessage, encodedDesired } from '../../../../control-plane/src/grpc/encoded.js';
import type { HubEvent } from '../../../../control-plane/src/grpc/events.js';
import { AgentHub } from '../../../../control-plane/src/grpc/hub.js';
import {
  type AgentMessage,
  ControlMessage,
  type DesiredState,
  type StatusReport,
} from '../../../../proto/gen/fleet/v1/agent.js';
import { FakeClock } from '../fake-clock.js';

/** A server-side stream: what the hub writes, whether it ended it, the errors it raised. */
class FakeCall extends EventEmitter {
  readonly written: ControlMessage[] = [];
  readonly errors: { code: number; details: string }[] = [];
  ended = false;
  constructor(readonly node: string | undefined) {
    super();
    this.on('error', (e) => this.errors.push(e));
  }
  /** Pushes arrive pre-encoded (as the service's serializer passes them through); kept decoded. */
  write(m: ControlMessage | EncodedMessage) {
    this.written.push(m instanceof EncodedMessage ? ControlMessage.decode(m.bytes) : m);
    return true;
  }
  end() {
    this.ended = true;
  }
  getPeer() {
    return 'test-peer';
  }
  send(m: AgentMessage) {
    this.emit('data', m);
  }
}

const auth: AgentAuthenticator = {
  authenticate: (call) => {
    const node = (call as unknown as FakeCall).node;
    return node
      ? { ok: true, identity: { node, keyFingerprint: 'k', serial: '01', notAfterMs: 0 } }
      : { ok: false, reason: 'no-certificate', message: 'no certificate' };
  },
};

function rig() {
  const clock = new FakeClock();
  /** Each node's desired version; `v-NODE` until a test sets another. */
  const versions = new Map<string, string>();
  const hub = new AgentHub({
    auth,
    desired: { forNode: (n) => ({ version: versions.get(n) ?? `v-${n}`, deployments: [] }) },
    log: createLogger('test', 'silent'),
    clock,
  });
  const events: HubEvent[] = [];
  hub.subscribe((e) => events.push(e));
  const open = (node: string | undefined) => {
    const call = new FakeCall(node);
    hub.connect(call as never);
    return call;
  };
  const attach = (node: string) => {
    const call = open(node);
    call.send(hello(node));
    return call;
  };
  return { hub, clock, events, open, attach, versions };
}

const hello = (node: string): AgentMessage => ({
  msg: { $case: 'hello', hello: { node, labels: { zone: 'a' }, agentVersion: 't', facts: undefined } },
});
const report: StatusReport = {
  desiredVersion: 'v',
  services: [],
  observedAtMs: 1,
  events: [],
  converged: true,
};
const kinds = (events: HubEvent[]) => events.map((e) => e.kind);
const ack = (desiredVersion: string): AgentMessage => ({ msg: { $case: 'ack', ack: { desiredVersion } } });
const versionsOf = (call: FakeCall) =>
  call.written.map((m) => (m.msg?.$case === 'desired' ? m.msg.desired.version : m.msg?.$case));

describe('AgentHub: the stream protocol', () => {
  test('a stream that fails authentication is UNAUTHENTICATED and emits nothing', () => {
    const r = rig();
    const call = r.open(undefined);
    assert.deepEqual(
      call.errors.map((e) => e.code),
      [GrpcStatus.UNAUTHENTICATED],
    );
    assert.deepEqual(r.events, []);
  });

  const refused: [string, AgentMessage][] = [
    ['a heartbeat first', { msg: { $case: 'heartbeat', heartbeat: { sentAtMs: 1 } } }],
    ['a hello for another node', hello('other')],
    ['an empty message', { msg: undefined }],
  ];
  for (const [what, first] of refused) {
    test(`${what} is PERMISSION_DENIED: no event, nothing sent`, () => {
      const r = rig();
      const call = r.open('n1');
      call.send(first);
      assert.deepEqual(
        call.errors.map((e) => e.code),
        [GrpcStatus.PERMISSION_DENIED],
      );
      assert.deepEqual(r.events, []);
      assert.deepEqual(call.written, []);
      assert.equal(r.hub.isConnected('n1'), false);
    });
  }

  test('hello: listeners hear connected before the node is sent its desired state', () => {
    const r = rig();
    let writtenAtConnected = -1;
    let call: FakeCall | undefined;
    r.hub.subscribe((e) => {
      if (e.kind === 'connected') writtenAtConnected = call?.written.length ?? 0;
    });
    call = r.attach('n1');
    assert.equal(writtenAtConnected, 0);
    assert.deepEqual(kinds(r.events), ['connected']);
    const e = r.events[0];
    assert.ok(e?.kind === 'connected');
    assert.deepEqual([e.node, e.atMs, e.hello.labels], ['n1', 1_000, { zone: 'a' }]);
    assert.deepEqual(call.written, [
      { msg: { $case: 'desired', desired: { version: 'v-n1', deployments: [] } } },
    ]);
    assert.deepEqual(r.hub.connectedNodes(), ['n1']);
  });

  const dispatch: [string, AgentMessage, Partial<HubEvent> | undefined][] = [
    ['heartbeat', { msg: { $case: 'heartbeat', heartbeat: { sentAtMs: 5 } } }, { kind: 'heartbeat' }],
    ['ack', { msg: { $case: 'ack', ack: { desiredVersion: 'v-n1' } } }, { kind: 'acked', version: 'v-n1' }],
    ['status', { msg: { $case: 'status', status: report } }, { kind: 'reported', report }],
    [
      'preflight answer',
      {
        msg: {
          $case: 'preflightResult',
          preflightResult: {
            requestId: 'r1',
            result: { desiredVersion: 'v', ok: true, checks: [], checkedAtMs: 1 },
          },
        },
      },
      { kind: 'preflightAnswered', requestId: 'r1' },
    ],
    [
      'preflight answer without a result',
      { msg: { $case: 'preflightResult', preflightResult: { requestId: 'r1', result: undefined } } },
      undefined,
    ],
  ];
  for (const [what, message, want] of dispatch) {
    test(`attached: ${what} → ${want?.kind ?? 'no event'}, attributed to the stream's node`, () => {
      const r = rig();
      const call = r.attach('n1');
      r.events.length = 0;
      r.clock.advance(7);
      call.send(message);
      if (!want) return assert.deepEqual(r.events, []);
      assert.equal(r.events.length, 1);
      assert.deepEqual(r.events[0], { ...r.events[0], ...want, node: 'n1', atMs: 1_007 });
    });
  }

  test('a second hello on one stream ends it with INTERNAL', () => {
    const r = rig();
    const call = r.attach('n1');
    call.send(hello('n1'));
    assert.deepEqual(
      call.errors.map((e) => e.code),
      [GrpcStatus.INTERNAL],
    );
  });

  test('a listener that throws fails the message with INTERNAL', () => {
    const r = rig();
    r.hub.subscribe((e) => {
      if (e.kind === 'acked') throw new Error('disk full');
    });
    const call = r.attach('n1');
    call.send({ msg: { $case: 'ack', ack: { desiredVersion: 'x' } } });
    assert.deepEqual(
      call.errors.map((e) => e.code),
      [GrpcStatus.INTERNAL],
    );
  });

  test('closing the stream emits disconnected once; a newer stream replaces the older silently', () => {
    const r = rig();
    const first = r.attach('n1');
    const second = r.attach('n1');
    assert.equal(first.ended, true, 'the older stream is ended');
    first.emit('close');
    assert.deepEqual(kinds(r.events), ['connected', 'connected']);
    assert.equal(r.hub.isConnected('n1'), true);
    second.emit('end');
    second.emit('close');
    assert.deepEqual(kinds(r.events), ['connected', 'connected', 'disconnected']);
    assert.deepEqual(r.events[2], { kind: 'disconnected', node: 'n1', atMs: 1_000, reason: 'closed' });
    assert.equal(r.hub.isConnected('n1'), false);
  });

  test('a listener failing on a disconnect (disk full) is logged, not thrown; later listeners still hear it', () => {
    const r = rig();
    const heard: string[] = [];
    r.hub.subscribe((e) => {
      if (e.kind === 'disconnected' || e.kind === 'reported')
        throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    });
    r.hub.subscribe((e) => heard.push(e.kind));
    const call = r.attach('n1');
    call.send({ msg: { $case: 'status', status: report } });
    assert.deepEqual(
      call.errors.map((e) => e.code),
      [GrpcStatus.INTERNAL],
      'the message that could not be recorded fails its stream',
    );
    assert.doesNotThrow(() => call.emit('close'));
    assert.deepEqual(heard, ['connected', 'reported', 'disconnected']);
    assert.equal(r.hub.isConnected('n1'), false);
  });

  test('push and send reach connected nodes only', () => {
    const r = rig();
    const a = r.attach('a');
    a.send(ack('v-a'));
    r.hub.push(['a', 'ghost']);
    assert.equal(a.written.length, 2);
    assert.equal(r.hub.send('ghost', { msg: undefined }), false);
    assert.equal(r.hub.send('a', { msg: undefined }), true);
  });

  test('shutdown announces each node as disconnected (shutdown) and ignores later messages', () => {
    const r = rig();
    const a = r.attach('a');
    r.attach('b');
    r.events.length = 0;
    r.hub.shutdown();
    assert.deepEqual(
      r.events.map((e) => [e.kind, e.node, e.kind === 'disconnected' && e.reason]),
      [
        ['disconnected', 'a', 'shutdown'],
        ['disconnected', 'b', 'shutdown'],
      ],
    );
    a.send({ msg: { $case: 'ack', ack: { desiredVersion: 'x' } } });
    a.emit('close');
    assert.equal(r.events.length, 2);
    assert.deepEqual(r.hub.connectedNodes(), []);
  });

  test('an unsubscribed listener hears nothing more', () => {
    const r = rig();
    const heard: string[] = [];
    const off = r.hub.subscribe((e) => heard.push(e.kind));
    const a = r.attach('a');
    off();
    a.send({ msg: { $case: 'heartbeat', heartbeat: { sentAtMs: 1 } } });
    assert.deepEqual(heard, ['connected']);
  });
});

describe('AgentHub: prefetch', () => {
  test('a PrefetchStatus becomes prefetchReported, attributed to the stream identity', () => {
    const r = rig();
    const call = r.attach('n1');
    const status = { deployment: 'web', revision: 2, images: [] };
    call.send({ msg: { $case: 'prefetchStatus', prefetchStatus: status } });
    const e = r.events.at(-1);
    assert.deepEqual(e, { kind: 'prefetchReported', node: 'n1', atMs: r.clock.now(), status });
    assert.equal(
      r.hub.send('n1', { msg: { $case: 'prefetch', prefetch: { ...status, images: ['i'] } } }),
      true,
    );
    assert.equal(call.written.at(-1)?.msg?.$case, 'prefetch');
  });
});

describe('AgentHub: pushes, one in flight per node', () => {
  test('pushes made while one is unanswered coalesce: the newest goes when the node acks', () => {
    const r = rig();
    const a = r.attach('a');
    r.versions.set('a', 'v2');
    r.hub.push(['a']);
    r.versions.set('a', 'v3');
    r.hub.push(['a']);
    assert.deepEqual(versionsOf(a), ['v-a'], 'nothing more while v-a is unanswered');
    a.send(ack('v-old'));
    assert.deepEqual(versionsOf(a), ['v-a'], 'an ack of another version answers nothing');
    a.send(ack('v-a'));
    assert.deepEqual(versionsOf(a), ['v-a', 'v3'], 'latest wins');
    a.send(ack('v3'));
    r.versions.set('a', 'v4');
    r.hub.push(['a']);
    assert.deepEqual(versionsOf(a), ['v-a', 'v3', 'v4'], 'an answered node gets the next at once');
  });

  test('a preflight refusal answers the push as an ack does', () => {
    const r = rig();
    const a = r.attach('a');
    r.versions.set('a', 'v2');
    r.hub.push(['a']);
    const refused = { desiredVersion: 'v-a', ok: false, checks: [], checkedAtMs: 1 };
    a.send({ msg: { $case: 'status', status: { ...report, preflight: refused } } });
    assert.deepEqual(versionsOf(a), ['v-a', 'v2']);
  });

  test('an unanswered push holds the next one back for the hold only (5 s), never forever', () => {
    const r = rig();
    const a = r.attach('a');
    r.versions.set('a', 'v2');
    r.hub.push(['a']);
    r.clock.advance(2_000);
    assert.deepEqual(versionsOf(a), ['v-a']);
    r.clock.advance(3_000);
    assert.deepEqual(versionsOf(a), ['v-a', 'v2']);
  });

  test('a new stream forgets what was in flight: its hello gets the newest state at once', () => {
    const r = rig();
    r.attach('a');
    r.versions.set('a', 'v2');
    r.hub.push(['a']);
    const again = r.attach('a');
    assert.deepEqual(versionsOf(again), ['v2']);
    r.versions.set('a', 'v3');
    again.send(ack('v2'));
    r.hub.push(['a']);
    assert.deepEqual(versionsOf(again), ['v2', 'v3']);
  });

  test('one desired-state object is encoded once, whatever number of nodes get it', () => {
    const state: DesiredState = { version: 'shared', deployments: [] };
    const first = encodedDesired(state);
    assert.equal(encodedDesired(state), first, 'the same bytes object');
    assert.deepEqual(ControlMessage.decode(first.bytes), { msg: { $case: 'desired', desired: state } });
    assert.notEqual(encodedDesired({ ...state }), first, 'another object is encoded on its own');
  });
});

describe('AgentHub: the welcome', () => {
  test('with a window source, each accepted hello gets a welcome with the window before its state', () => {
    const hub = new AgentHub({
      auth,
      desired: { forNode: () => ({ version: 'v', deployments: [] }) },
      log: createLogger('test', 'silent'),
      clock: new FakeClock(),
      reconnectWindowMs: () => 7_000,
    });
    const call = new FakeCall('n1');
    hub.connect(call as never);
    call.send(hello('n1'));
    assert.deepEqual(
      call.written.map((m) => m.msg?.$case),
      ['welcome', 'desired'],
    );
    const first = call.written[0]!.msg;
    assert.equal(first?.$case === 'welcome' && first.welcome.reconnectWindowMs, 7_000);
  });
});
