import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FleetClient, NodeListQuery, NodeListReply } from '../../../../control-plane/src/api/client.js';
import { nodesCommand, parseNodeLimit, parseNodeState } from '../../../../control-plane/src/cli/nodes.js';

/** A node list item as the API answers it. */
const item = (name: string): NodeListReply['nodes'][number] => ({
  name,
  labels: { gpu: 'h100' },
  agentVersion: '1',
  facts: {},
  connected: true,
  firstSeenMs: 1,
  lastSeenMs: Date.now(),
  ackedVersion: '',
  desiredVersion: '',
  gpus: {
    status: 'unknown',
    count: 0,
    models: '',
    memoryUsedMiB: 0,
    memoryTotalMiB: 0,
    utilizationPct: null,
    temperatureMaxC: null,
    error: '',
  },
});

/** Runs `fleet nodes` against a client that records its calls; what it printed. */
async function run(o: Parameters<typeof nodesCommand>[2]) {
  const calls: string[] = [];
  const client = {
    allNodes: async (q: NodeListQuery) => {
      calls.push(`all ${JSON.stringify(q)}`);
      return [item('a'), item('b'), item('c')];
    },
    nodes: async (q: NodeListQuery) => {
      calls.push(`page ${JSON.stringify(q)}`);
      return { nodes: [item('a'), item('b')], next: 'b' };
    },
  } as unknown as FleetClient;
  const out: string[] = [];
  const err: string[] = [];
  const [w, e] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((s: string) => out.push(s) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => err.push(s) > 0) as typeof process.stderr.write;
  try {
    await nodesCommand(client, undefined, o);
  } finally {
    [process.stdout.write, process.stderr.write] = [w, e];
  }
  return { calls, out: out.join(''), err: err.join('') };
}

describe('fleet nodes', () => {
  test('without --limit it lists every node (all pages), with the filters', async () => {
    const r = await run({ output: 'json', label: 'gpu=h100', state: 'online' });
    assert.deepEqual(r.calls, ['all {"label":"gpu=h100","state":"online"}']);
    assert.deepEqual(
      JSON.parse(r.out).nodes.map((n: { name: string }) => n.name),
      ['a', 'b', 'c'],
    );
    assert.equal(JSON.parse(r.out).next, undefined);
  });

  test('--limit shows one page; json carries next, text names the --after for the next page', async () => {
    const json = await run({ output: 'json', limit: 2, after: 'x' });
    assert.deepEqual(json.calls, ['page {"after":"x","limit":2}']);
    assert.equal(JSON.parse(json.out).next, 'b');
    const text = await run({ output: 'text', limit: 2 });
    assert.match(text.out, /^NODE\s+STATUS\s+LABELS/);
    assert.match(text.out, /\na\s+connected\s+gpu=h100/);
    assert.equal(text.err, 'more nodes: the next page is --after b\n');
  });

  test('--limit and --state values', () => {
    assert.equal(parseNodeLimit('1'), 1);
    assert.equal(parseNodeLimit('1000'), 1000);
    for (const bad of ['0', '1001', '-1', '2.5', 'ten', ''])
      assert.throws(() => parseNodeLimit(bad), /invalid limit .* \(1\.\.1000\)/, bad);
    assert.equal(parseNodeState('offline'), 'offline');
    assert.throws(() => parseNodeState('up'), /invalid state "up" \(online or offline\)/);
  });
});
