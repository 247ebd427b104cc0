import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentLink, HubEvent } from '../../../../control-plane/src/grpc/events.js';
import { PreflightRequests } from '../../../../control-plane/src/grpc/preflight.js';
import type { ControlMessage, PreflightResult } from '../../../../proto/gen/fleet/v1/agent.js';
import { FakeClock } from '../fake-clock.js';

const RESULT: PreflightResult = { desiredVersion: 'v', ok: false, checks: [], checkedAtMs: 1 };
const DESIRED = { version: 'v', deployments: [] };

function rig(connected = ['n1', 'n2']) {
  const clock = new FakeClock();
  const sent: [string, ControlMessage][] = [];
  const link: AgentLink = {
    isConnected: (n) => connected.includes(n),
    send: (n, m) => {
      sent.push([n, m]);
      return connected.includes(n);
    },
  };
  const requests = new PreflightRequests(link, clock);
  const requestId = (i = 0) => {
    const m = sent[i]?.[1].msg;
    assert.ok(m?.$case === 'preflight');
    return m.preflight.requestId;
  };
  const answer = (node: string, id: string): HubEvent => ({
    kind: 'preflightAnswered',
    node,
    atMs: 1,
    requestId: id,
    result: RESULT,
  });
  return { clock, sent, requests, requestId, answer };
}

describe('PreflightRequests: correlating questions with answers', () => {
  test('the answer from the node asked resolves the request', async () => {
    const r = rig();
    const p = r.requests.ask('n1', DESIRED);
    assert.equal(r.sent[0]?.[0], 'n1');
    r.requests.onHubEvent(r.answer('n1', r.requestId()));
    assert.deepEqual(await p, { result: RESULT });
    assert.equal(r.clock.pending, 0, 'no timer left behind');
  });

  test('a preview is asked for by deployment name and comes back with the answer', async () => {
    const r = rig();
    const p = r.requests.ask('n1', DESIRED, 10_000, 'web');
    const m = r.sent[0]?.[1].msg;
    assert.ok(m?.$case === 'preflight');
    assert.equal(m.preflight.previewDeployment, 'web');
    const preview = {
      containers: [],
      images: [{ image: 'x:1', present: false }],
      proxyDiff: '',
      notes: [],
      error: '',
    };
    r.requests.onHubEvent({ ...r.answer('n1', r.requestId()), preview } as HubEvent);
    assert.deepEqual(await p, { result: RESULT, preview });
  });

  test('a plain check asks for no preview', () => {
    const r = rig();
    void r.requests.ask('n1', DESIRED);
    const m = r.sent[0]?.[1].msg;
    assert.ok(m?.$case === 'preflight');
    assert.equal(m.preflight.previewDeployment, '');
    r.clock.advance(10_000);
  });

  const unanswered: [string, (r: ReturnType<typeof rig>) => void][] = [
    ['the node is not connected', () => {}],
    ['no answer within the timeout', (r) => r.clock.advance(10_000)],
    [
      'the stream closes',
      (r) => r.requests.onHubEvent({ kind: 'disconnected', node: 'n1', atMs: 2, reason: 'closed' }),
    ],
    [
      'another node answers with the same id (and then time runs out)',
      (r) => {
        r.requests.onHubEvent(r.answer('n2', r.requestId()));
        r.clock.advance(10_000);
      },
    ],
  ];
  for (const [what, act] of unanswered) {
    test(`undefined when ${what}`, async () => {
      const r = rig(what.includes('not connected') ? [] : ['n1', 'n2']);
      const p = r.requests.ask('n1', DESIRED);
      act(r);
      assert.equal(await p, undefined);
    });
  }

  test('a disconnect answers only the requests waiting on that node', async () => {
    const r = rig();
    const p1 = r.requests.ask('n1', DESIRED);
    const p2 = r.requests.ask('n2', DESIRED);
    r.requests.onHubEvent({ kind: 'disconnected', node: 'n1', atMs: 2, reason: 'shutdown' });
    r.requests.onHubEvent(r.answer('n2', r.requestId(1)));
    assert.deepEqual(await Promise.all([p1, p2]), [undefined, { result: RESULT }]);
  });
});
