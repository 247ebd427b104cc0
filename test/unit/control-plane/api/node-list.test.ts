import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify';
import { api } from '../../../../control-plane/src/api/app.js';
import { FleetClient } from '../../../../control-plane/src/api/client.js';
import { nodePageSql } from '../../../../control-plane/src/db/nodes.js';
import type { Store } from '../../../../control-plane/src/db/store.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { parseLabelSelector } from '../../../../control-plane/src/selector.js';
import { HostFacts } from '../../../../proto/gen/fleet/v1/agent.js';
import { freshStores, injectAs, tokenFor } from '../fixtures.js';

const freshStore = freshStores('fleet-node-list-');

/** 250 nodes `n000`…`n249`: every third offline, labels by residue, GPU facts on the even ones. */
const COUNT = 250;
const names = Array.from({ length: COUNT }, (_, i) => `n${String(i).padStart(3, '0')}`);
const online = (i: number) => i % 3 !== 0;
const labelsOf = (i: number): Record<string, string> => ({
  ...(i % 2 === 0 ? { gpu: 'h100' } : { gpu: 'l40s' }),
  ...(i % 5 === 0 ? { 'zone.example/rack': 'r1.a' } : {}),
});

function seed(store: Store) {
  names.forEach((name, i) => {
    if (online(i)) store.nodes.upsertHello({ name, labels: {}, agentVersion: 't', facts: {} }, 1);
    else store.nodes.seed(name, {}, 1);
    store.nodes.setLabels(name, labelsOf(i));
    if (i % 2 === 0) {
      const gpus = [0, 1].map((index) => ({ index, name: 'NVIDIA H100 80GB HBM3', memoryTotalMib: 81559 }));
      store.facts.record(name, HostFacts.fromPartial({ hostname: name, gpu: { status: 'ok', gpus } }), 1);
    }
  });
}

/** A Fastify serving the API over `store` (nothing pushes: these tests only read). */
async function withApi(store: Store): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(api, {
    store,
    deployer: new Deployer(store, { push: () => {} }),
    version: 't',
    connectedAgents: () => 0,
  });
  return app;
}

describe('GET /v1/nodes: pages, filters, bounds', () => {
  let app: FastifyInstance;
  let store: Store;
  let inject: (o: InjectOptions) => Promise<LightMyRequestResponse>;
  const get = async (query: string) => {
    const res = await inject({ method: 'GET', url: `/v1/nodes${query}` });
    return { status: res.statusCode, body: res.json() };
  };
  /** Follows `next` from `query`'s first page; the names of each page. */
  const walk = async (query: string) => {
    const pages: string[][] = [];
    let after: string | undefined;
    do {
      const sep = query ? '&' : '?';
      const { status, body } = await get(`${query}${after ? `${sep}after=${after}` : ''}`);
      assert.equal(status, 200, JSON.stringify(body));
      pages.push(body.nodes.map((n: { name: string }) => n.name));
      after = body.next;
      if (after !== undefined) assert.equal(after, pages.at(-1)!.at(-1), 'next is the last name of the page');
    } while (after !== undefined);
    return pages;
  };

  before(async () => {
    store = freshStore();
    seed(store);
    app = await withApi(store);
    await app.ready();
    inject = injectAs(app, store, 'viewer');
  });
  after(async () => {
    await app.close();
    store.close();
  });

  test('pages of the default 100 cover every node exactly once, in name order; no next on the last', async () => {
    const pages = await walk('');
    assert.deepEqual(
      pages.map((p) => p.length),
      [100, 100, 50],
    );
    assert.deepEqual(pages.flat(), names);
  });

  test('a last page that is exactly full has no next (one row more is read, not one page more)', async () => {
    const pages = await walk('?limit=125');
    assert.deepEqual(
      pages.map((p) => p.length),
      [125, 125],
    );
    const one = await get('?limit=1000');
    assert.equal(one.body.nodes.length, COUNT);
    assert.equal(one.body.next, undefined);
    const past = await get(`?after=${names.at(-1)}`);
    assert.deepEqual(past.body, { nodes: [] }, 'after the last node: an empty last page');
    const between = await get('?limit=2&after=n1');
    assert.deepEqual(
      between.body.nodes.map((n: { name: string }) => n.name),
      ['n100', 'n101'],
      'any name is a cursor, existing or not',
    );
  });

  test('state filters by liveness; connected agrees with it', async () => {
    const on = (await walk('?state=online&limit=60')).flat();
    assert.deepEqual(
      on,
      names.filter((_, i) => online(i)),
    );
    const off = await get('?state=offline&limit=1000');
    assert.deepEqual(
      off.body.nodes.map((n: { name: string }) => n.name),
      names.filter((_, i) => !online(i)),
    );
    assert.ok(off.body.nodes.every((n: { connected: boolean }) => !n.connected));
  });

  test('label selects like hosts: key=value, key present, comma-separated terms must all match', async () => {
    const idx = (f: (i: number) => boolean) => names.filter((_, i) => f(i));
    assert.deepEqual(
      (await walk('?label=gpu=h100&limit=40')).flat(),
      idx((i) => i % 2 === 0),
    );
    assert.deepEqual(
      (await walk('?label=zone.example/rack')).flat(),
      idx((i) => i % 5 === 0),
    );
    assert.deepEqual(
      (await walk('?label=gpu=l40s,zone.example/rack=r1.a&state=online&limit=7')).flat(),
      idx((i) => i % 2 === 1 && i % 5 === 0 && online(i)),
    );
    assert.deepEqual((await get('?label=gpu=a100')).body, { nodes: [] });
  });

  test('list items leave out the host facts but keep the GPU summary; the detail route has them', async () => {
    const { body } = await get('?limit=2');
    const [n0, n1] = body.nodes;
    assert.equal(n0.host, undefined);
    assert.deepEqual([n0.gpus.count, n0.gpus.models, n1.gpus.count], [2, '2× NVIDIA H100 80GB HBM3', 0]);
    assert.equal(n0.gpus.status, 'stale', 'n000 is offline: its GPU values are history');
    for (const key of ['name', 'labels', 'agentVersion', 'facts', 'connected', 'firstSeenMs', 'lastSeenMs'])
      assert.ok(key in n0, key);
    assert.ok('ackedVersion' in n0 && 'desiredVersion' in n0);
    const detail = (await inject({ method: 'GET', url: '/v1/nodes/n000' })).json();
    assert.equal(detail.host.hostname, 'n000');
    assert.deepEqual({ ...detail, host: undefined }, { ...n0, host: undefined });
  });

  test('bad query values are 400 with a message naming the parameter', async () => {
    const cases: [string, RegExp][] = [
      ['?limit=0', /querystring\/limit must be >= 1/],
      ['?limit=1001', /querystring\/limit must be <= 1000/],
      ['?limit=ten', /querystring\/limit must be integer/],
      ['?after=', /querystring\/after must NOT have fewer than 1 characters/],
      ['?state=up', /querystring\/state must be equal to one of the allowed values/],
      ['?label=gpu==x', /querystring\/label: invalid label selector term "gpu==x"/],
      ['?label=a,,b', /querystring\/label: invalid label selector term ""/],
      ['?labels=gpu', /querystring must NOT have additional properties/],
    ];
    for (const [query, message] of cases) {
      const { status, body } = await get(query);
      assert.equal(status, 400, query);
      assert.equal(body.error, 'bad_request', query);
      assert.match(body.message, message, query);
    }
  });

  test('FleetClient.allNodes follows next to the end; nodes() returns one page', async () => {
    const listening = await withApi(store);
    const url = await listening.listen({ host: '127.0.0.1', port: 0 });
    try {
      const client = new FleetClient(url, { token: tokenFor(store, 'viewer', 'client') });
      const all = await client.allNodes({ label: 'gpu' });
      assert.deepEqual(
        all.map((n) => n.name),
        names,
      );
      const page = await client.nodes({ limit: 3, after: 'n010', state: 'offline' });
      assert.deepEqual(
        page.nodes.map((n) => n.name),
        ['n012', 'n015', 'n018'],
      );
      assert.equal(page.next, 'n018');
    } finally {
      await listening.close();
    }
  });
});

describe('the page query is index-backed', () => {
  test('every shape walks the primary key index in order: no full scan, no sort', () => {
    const store = freshStore();
    try {
      const shapes = [
        { labels: [] },
        { connected: true, labels: [] },
        { labels: [{ key: 'gpu', value: 'h100' }, { key: 'rack' }] },
      ];
      for (const shape of shapes) {
        const plan = store.db
          .prepare(`EXPLAIN QUERY PLAN ${nodePageSql(shape)}`)
          .all({ after: '', limit: 1, connected: 1, path0: '$."gpu"', value0: 'h100', path1: '$."rack"' })
          .map((r) => (r as { detail: string }).detail)
          .join('; ');
        assert.match(plan, /SEARCH nodes USING INDEX sqlite_autoindex_nodes_1 \(name>\?\)/, plan);
        assert.doesNotMatch(plan, /TEMP B-TREE/, plan);
      }
    } finally {
      store.close();
    }
  });
});

describe('parseLabelSelector', () => {
  test('terms, values and errors', () => {
    assert.deepEqual(parseLabelSelector('gpu'), [{ key: 'gpu' }]);
    assert.deepEqual(parseLabelSelector('gpu=h100,zone.io/rack=,x'), [
      { key: 'gpu', value: 'h100' },
      { key: 'zone.io/rack', value: '' },
      { key: 'x' },
    ]);
    assert.throws(() => parseLabelSelector('"a"=b'), /invalid label selector term "\\"a\\"=b"/);
    assert.throws(() => parseLabelSelector(Array(17).fill('a').join(',')), /17 terms \(at most 16\)/);
  });
});
