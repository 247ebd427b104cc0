import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import type Docker from 'dockerode';
import {
  type ContainerEvent,
  LineSplitter,
  parseContainerEvent,
  watchContainerEvents,
} from '../../../../agent/src/docker/events.js';
import { createLogger } from '../../../../common/log.js';
import { FakeTimers } from '../../../helpers/fake-runtime.js';

const NODE = 'n1';
const flush = () => new Promise<void>((r) => setImmediate(r));

/** A Docker events line as the daemon writes it (API 1.4x). */
function line(
  over: { id?: string; action?: string; attrs?: Record<string, string>; timeNano?: number } = {},
) {
  return `${JSON.stringify({
    status: over.action ?? 'die',
    id: over.id ?? 'c1',
    Type: 'container',
    Action: over.action ?? 'die',
    Actor: {
      ID: over.id ?? 'c1',
      Attributes: {
        exitCode: '7',
        image: 'img',
        name: 'fleet-x',
        'fleet.managed': 'true',
        'fleet.node': NODE,
        'fleet.deployment': 'd',
        'fleet.service': 's',
        'fleet.replica': '2',
        ...over.attrs,
      },
    },
    scope: 'local',
    time: 1_700_000_000,
    timeNano: over.timeNano ?? 1_700_000_000_123_456_800,
  })}\n`;
}

describe('parseContainerEvent', () => {
  test('a die event: id, action, exit code, key from labels, time in ms', () => {
    assert.deepEqual(parseContainerEvent(line(), NODE), {
      id: 'c1',
      action: 'die',
      exitCode: 7,
      key: 'd/s/2',
      atMs: 1_700_000_000_123,
    });
  });

  test('role label, no key when replica labels are missing', () => {
    const e = parseContainerEvent(
      line({ action: 'start', attrs: { 'fleet.role': 'proxy', 'fleet.replica': '' } }),
      NODE,
    );
    assert.equal(e?.role, 'proxy');
    assert.equal(e?.key, undefined);
  });

  test('anything else is ignored without throwing', () => {
    for (const l of [
      '',
      '   ',
      'not json',
      '{"Type":"container"',
      'null',
      '42',
      '"str"',
      '[]',
      '{}',
      JSON.stringify({ Type: 'network', Action: 'connect', Actor: { ID: 'n' } }),
      JSON.stringify({ Type: 'container', Action: 'die', Actor: { ID: 5 } }),
      JSON.stringify({ Type: 'container', Action: 'die', Actor: 'x' }),
    ]) {
      assert.equal(parseContainerEvent(l, NODE), undefined, l);
    }
  });

  test("another node's container is ignored", () => {
    assert.equal(parseContainerEvent(line({ attrs: { 'fleet.node': 'other' } }), NODE), undefined);
  });

  test('a non-numeric exit code is left out; time falls back to seconds', () => {
    const raw = JSON.parse(line({ attrs: { exitCode: 'x' } }));
    delete raw.timeNano;
    const e = parseContainerEvent(JSON.stringify(raw), NODE);
    assert.equal(e?.exitCode, undefined);
    assert.equal(e?.atMs, 1_700_000_000_000);
  });
});

describe('LineSplitter', () => {
  test('events split across chunks and several in one chunk', () => {
    const s = new LineSplitter();
    const all = line({ id: 'a' }) + line({ id: 'b' }) + line({ id: 'c' });
    const out: string[] = [];
    out.push(...s.push(Buffer.from(all.slice(0, 5))).lines);
    out.push(...s.push(Buffer.from(all.slice(5, all.length - 3))).lines);
    out.push(...s.push(Buffer.from(all.slice(all.length - 3))).lines);
    assert.deepEqual(
      out.map((l) => parseContainerEvent(l, NODE)?.id),
      ['a', 'b', 'c'],
    );
  });

  test('a UTF-8 character split between chunks survives', () => {
    const s = new LineSplitter();
    const bytes = Buffer.from(line({ attrs: { name: '模型' } }));
    const at = bytes.indexOf(Buffer.from('模')) + 1;
    const lines = [...s.push(bytes.subarray(0, at)).lines, ...s.push(bytes.subarray(at)).lines];
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /模型/);
  });

  test('an over-long line is dropped and the next one still parses', () => {
    const s = new LineSplitter(100);
    const r1 = s.push('x'.repeat(150));
    const r2 = s.push('y'.repeat(10));
    const r3 = s.push(`zz\n${line({ id: 'after' })}`);
    assert.deepEqual([r1.lines, r2.lines], [[], []]);
    assert.ok(r1.dropped + r2.dropped + r3.dropped >= 150);
    assert.deepEqual(
      r3.lines.map((l) => parseContainerEvent(l)?.id),
      ['after'],
    );
  });
});

/** A dockerode stand-in whose /events subscriptions the test opens, feeds and breaks. */
class FakeEvents {
  subscriptions: { opts: Docker.GetEventsOptions; stream: PassThrough }[] = [];
  failNext = 0;
  hold = false;
  pending: (() => void)[] = [];

  readonly docker = {
    getEvents: (opts: Docker.GetEventsOptions) => {
      if (this.failNext > 0) {
        this.failNext--;
        return Promise.reject(new Error('connect ENOENT /var/run/docker.sock'));
      }
      const stream = new PassThrough();
      this.subscriptions.push({ opts, stream });
      if (!this.hold) return Promise.resolve(stream);
      return new Promise((resolve) => this.pending.push(() => resolve(stream)));
    },
  } as unknown as Docker;

  get current() {
    return this.subscriptions.at(-1)!.stream;
  }
}

function rig() {
  const fake = new FakeEvents();
  const timers = new FakeTimers();
  const events: ContainerEvent[] = [];
  let reconnects = 0;
  const w = watchContainerEvents({
    docker: fake.docker,
    node: NODE,
    onEvent: (e) => events.push(e),
    onReconnect: () => reconnects++,
    log: createLogger('test', 'silent'),
    retryMinMs: 250,
    retryMaxMs: 5_000,
    clock: timers,
    random: () => 1,
  });
  return { fake, timers, events, w, reconnects: () => reconnects };
}

describe('watchContainerEvents', () => {
  test('subscribes with the node filter and delivers parsed events', async () => {
    const r = rig();
    await flush();
    assert.equal(r.fake.subscriptions.length, 1);
    assert.deepEqual(r.fake.subscriptions[0]!.opts.filters, {
      type: ['container'],
      event: ['die', 'start', 'oom', 'destroy'],
      label: ['fleet.managed=true', `fleet.node=${NODE}`],
    });
    assert.equal(r.w.connected(), true);
    const text = line({ id: 'a' }) + line({ id: 'b', action: 'start' });
    r.fake.current.write(text.slice(0, 17));
    r.fake.current.write(`${text.slice(17)}garbage\n{"half":`);
    await flush();
    assert.deepEqual(
      r.events.map((e) => [e.id, e.action]),
      [
        ['a', 'die'],
        ['b', 'start'],
      ],
    );
    assert.equal(r.reconnects(), 0, 'the first subscription is not a reconnect');
    r.w.stop();
  });

  test('a broken stream is re-subscribed with backoff, and the caller told to resync', async () => {
    const r = rig();
    await flush();
    r.fake.current.end();
    await flush();
    assert.equal(r.w.connected(), false);
    assert.equal(r.fake.subscriptions.length, 1);
    assert.deepEqual(r.timers.delays(), [250]);
    r.timers.advance(250);
    await flush();
    assert.equal(r.fake.subscriptions.length, 2);
    assert.equal(r.w.connected(), true);
    assert.equal(r.reconnects(), 1);
    r.fake.current.write(line({ id: 'after' }));
    await flush();
    assert.deepEqual(
      r.events.map((e) => e.id),
      ['after'],
    );
    r.w.stop();
  });

  test('while the daemon is down it retries forever with growing, capped delays', async () => {
    const r = rig();
    await flush();
    r.fake.failNext = 8;
    r.fake.current.destroy(new Error('socket hang up'));
    await flush();
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      delays.push(...r.timers.delays().filter((d) => d !== 10_000));
      r.timers.advance(r.timers.delays().filter((d) => d !== 10_000)[0] ?? 0);
      await flush();
    }
    assert.deepEqual(delays, [250, 500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000, 5_000]);
    assert.equal(r.w.connected(), true);
    assert.equal(r.reconnects(), 1, 'one resync after the successful re-subscription, not per attempt');
    r.w.stop();
  });

  test('a subscription that gets no answer is abandoned and retried', async () => {
    const r = rig();
    await flush();
    r.fake.hold = true;
    r.fake.current.end();
    await flush();
    r.timers.advance(250);
    await flush();
    assert.equal(r.fake.subscriptions.length, 2);
    assert.equal(r.w.connected(), false);
    r.timers.advance(10_000);
    await flush();
    assert.equal(r.w.connected(), false);
    assert.equal(r.timers.size, 1, 'a retry is scheduled');
    const late = r.fake.subscriptions[1]!.stream;
    r.fake.pending.shift()!(); // the daemon answers after all: that stream is dropped
    await flush();
    assert.equal(late.destroyed, true);
    assert.equal(r.w.connected(), false);
    r.fake.hold = false;
    r.timers.advance(500);
    await flush();
    assert.equal(r.w.connected(), true);
    assert.equal(r.reconnects(), 1);
    r.w.stop();
    assert.equal(r.timers.size, 0);
  });

  test('stop: stream destroyed, no more timers, late answers ignored', async () => {
    const r = rig();
    await flush();
    const s = r.fake.current;
    r.w.stop();
    assert.equal(s.destroyed, true);
    assert.equal(r.w.connected(), false);
    await flush();
    assert.equal(r.timers.size, 0);
    assert.equal(r.fake.subscriptions.length, 1);
  });

  test('a handler that throws does not stop delivery', async () => {
    const fake = new FakeEvents();
    const seen: string[] = [];
    const w = watchContainerEvents({
      docker: fake.docker,
      node: NODE,
      onEvent: (e) => {
        seen.push(e.id);
        throw new Error('handler bug');
      },
      onReconnect: () => {},
      log: createLogger('test', 'silent'),
      clock: new FakeTimers(),
    });
    await flush();
    fake.current.write(line({ id: 'a' }) + line({ id: 'b' }));
    await flush();
    assert.deepEqual(seen, ['a', 'b']);
    w.stop();
  });
});
