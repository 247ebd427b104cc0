import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { api } from '../../../../control-plane/src/api/app.js';
import { FleetClient, type StreamedEvent } from '../../../../control-plane/src/api/client.js';
import type { Store } from '../../../../control-plane/src/db/store.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { bearer, freshStores, tokenFor } from '../fixtures.js';

const freshStore = freshStores('fleet-sse-');

/** The API on a real listening port over a real SQLite file. */
async function rig(eventStream = {}) {
  const store = freshStore();
  const app = Fastify();
  const deployer = new Deployer(store, { push: () => {} });
  await app.register(api, { store, deployer, version: 't', connectedAgents: () => 0, eventStream });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const token = tokenFor(store, 'viewer');
  return {
    store,
    url,
    auth: bearer(token),
    client: new FleetClient(url, { token }),
    async close() {
      await app.close();
      store.close();
    },
  };
}

const add = (store: Store, kind: string, over: { node?: string; deployment?: string } = {}) =>
  store.events.add({ atMs: 1_000, kind, message: kind, ...over });

/** Reads `n` events from the stream, then stops it; rejects after 3 s. */
async function take(
  client: FleetClient,
  query: Parameters<FleetClient['eventStream']>[0],
  n: number,
  during?: () => void,
) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 3_000);
  const got: StreamedEvent[] = [];
  try {
    for await (const e of client.eventStream(query, abort.signal)) {
      got.push(e);
      if (got.length === 1) during?.();
      if (got.length === n) break;
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return got;
}

describe('GET /v1/events/stream', () => {
  test('history first, then live events as they are committed, in id order', async () => {
    const r = await rig();
    add(r.store, 'a.one');
    add(r.store, 'a.two');
    const got = await take(r.client, {}, 4, () =>
      setTimeout(() => {
        r.store.transaction(() => {
          add(r.store, 'b.live');
          add(r.store, 'b.again');
        });
      }, 50),
    );
    assert.deepEqual(
      got.map((e) => e.kind),
      ['a.one', 'a.two', 'b.live', 'b.again'],
    );
    assert.deepEqual(
      got.map((e) => e.id),
      [1, 2, 3, 4],
    );
    await r.close();
  });

  test('a rolled-back event is never streamed', async () => {
    const r = await rig();
    add(r.store, 'first');
    const got = await take(r.client, {}, 2, () =>
      setTimeout(() => {
        assert.throws(() =>
          r.store.transaction(() => {
            add(r.store, 'rolled.back');
            throw new Error('abort');
          }),
        );
        add(r.store, 'committed');
      }, 50),
    );
    assert.deepEqual(
      got.map((e) => e.kind),
      ['first', 'committed'],
    );
    await r.close();
  });

  test('Last-Event-ID resumes after that id; since does too', async () => {
    const r = await rig();
    for (const k of ['e1', 'e2', 'e3']) add(r.store, k);
    const res = await fetch(`${r.url}/v1/events/stream?follow=false`, {
      headers: { 'last-event-id': '2', ...r.auth },
    });
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /^text\/event-stream/);
    const text = await res.text();
    assert.match(text, /^id: 3\nevent: e3\ndata: \{.*"kind":"e3".*\}\n\n$/);
    const since = await take(r.client, { since: 1, follow: false }, 10);
    assert.deepEqual(
      since.map((e) => e.kind),
      ['e2', 'e3'],
    );
    await r.close();
  });

  test('deployment and node filters apply to history and live events', async () => {
    const r = await rig();
    add(r.store, 'h.match', { deployment: 'web', node: 'n1' });
    add(r.store, 'h.other-node', { deployment: 'web', node: 'n2' });
    add(r.store, 'h.other-dep', { deployment: 'db', node: 'n1' });
    const got = await take(r.client, { deployment: 'web', node: 'n1' }, 2, () =>
      setTimeout(() => {
        add(r.store, 'l.other', { deployment: 'db', node: 'n1' });
        add(r.store, 'l.match', { deployment: 'web', node: 'n1' });
      }, 50),
    );
    assert.deepEqual(
      got.map((e) => e.kind),
      ['h.match', 'l.match'],
    );
    await r.close();
  });

  test('without since, the history is the newest `limit` events', async () => {
    const r = await rig();
    for (let i = 1; i <= 5; i++) add(r.store, `e${i}`);
    const got = await take(r.client, { limit: 2, follow: false }, 10);
    assert.deepEqual(
      got.map((e) => e.kind),
      ['e4', 'e5'],
    );
    await r.close();
  });

  test('heartbeats; a reader that falls behind is dropped with a final comment', async () => {
    const r = await rig({ heartbeatMs: 20, bufferEvents: 3 });
    const res = await fetch(`${r.url}/v1/events/stream`, { headers: r.auth });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /^: ping\n\n/);
    // Ten events published in one go overflow a buffer of three before the writer drains it.
    r.store.transaction(() => {
      for (let i = 0; i < 10; i++) add(r.store, `burst${i}`);
    });
    let text = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      text += new TextDecoder().decode(chunk.value);
    assert.match(text, /: dropped: .*Last-Event-ID/);
    await r.close();
  });

  test('closing the server ends open streams instead of waiting for them', async () => {
    const r = await rig();
    const res = await fetch(`${r.url}/v1/events/stream`, { headers: r.auth });
    const body = res.body!.getReader();
    const closed = r.close();
    for (let chunk = await body.read(); !chunk.done; chunk = await body.read());
    await closed;
  });

  test('a bad Last-Event-ID is a 400', async () => {
    const r = await rig();
    const res = await fetch(`${r.url}/v1/events/stream`, { headers: { 'last-event-id': 'x', ...r.auth } });
    assert.equal(res.status, 400);
    await r.close();
  });
});
