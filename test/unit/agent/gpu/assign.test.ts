import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  assignGpus,
  deviceRequestsFor,
  freeGpus,
  type GpuAssignment,
  type GpuHolding,
  type GpuInfo,
  type GpuRequest,
} from '../../../../agent/src/gpu/assign.js';

const uuid = (i: number) => `GPU-${String(i).padStart(8, '0')}-aaaa-bbbb-cccc-${String(i).padStart(12, '0')}`;
const gpu = (index: number, o: Partial<GpuInfo> = {}): GpuInfo => ({
  uuid: uuid(index),
  index,
  memoryTotalMib: 81559,
  memoryFreeMib: 81000,
  ...o,
});
const node = (n: number) => Array.from({ length: n }, (_, i) => gpu(i));
const hold = (key: string, ...idx: number[]): GpuHolding => ({
  key,
  containerId: `c0ffee${key.replace(/\W/g, '')}`.padEnd(64, '0'),
  uuids: idx.map(uuid),
});
const req = (key: string, count: number, memoryMib = 0): GpuRequest => ({ key, count, memoryMib });

function ok(a: GpuAssignment | undefined): string[] {
  assert.ok(a, 'no result for the request');
  assert.ok(a.ok, `expected ok, got: ${a.ok ? '' : a.reason}`);
  return a.uuids;
}
function fail(a: GpuAssignment | undefined): string {
  assert.ok(a, 'no result for the request');
  assert.equal(a.ok, false, `expected a failure, got ${JSON.stringify(a)}`);
  return (a as { reason: string }).reason;
}

describe('assignGpus: table', () => {
  test('a request that fits gets the lowest-index GPUs', () => {
    const r = assignGpus(node(4), [], [req('d/s/0', 2)]);
    assert.deepEqual(ok(r.get('d/s/0')), [uuid(0), uuid(1)]);
  });

  test('replicas get distinct GPUs, in request order', () => {
    const r = assignGpus(node(4), [], [req('d/s/0', 1), req('d/s/1', 2), req('d/s/2', 1)]);
    assert.deepEqual(ok(r.get('d/s/0')), [uuid(0)]);
    assert.deepEqual(ok(r.get('d/s/1')), [uuid(1), uuid(2)]);
    assert.deepEqual(ok(r.get('d/s/2')), [uuid(3)]);
    assert.deepEqual([...r.keys()], ['d/s/0', 'd/s/1', 'd/s/2']);
  });

  test('count 0 is ok with no GPUs, even on a node without GPUs', () => {
    const r = assignGpus([], [], [req('d/web/0', 0)]);
    assert.deepEqual(r.get('d/web/0'), { ok: true, uuids: [] });
  });

  test('more GPUs than the node has at all: says so', () => {
    const r = assignGpus(node(2), [], [req('d/s/0', 4)]);
    assert.equal(fail(r.get('d/s/0')), 'needs 4 GPUs per replica, the node has 2');
    const none = assignGpus([], [], [req('d/s/0', 1)]);
    assert.equal(fail(none.get('d/s/0')), 'needs 1 GPU per replica, the node has none');
  });

  test('does not fit right now: says how many are free and who holds the rest', () => {
    const r = assignGpus(node(2), [hold('dep/svc/0', 0)], [req('dep/svc/1', 2)]);
    const reason = fail(r.get('dep/svc/1'));
    assert.match(reason, /^needs 2 GPUs, 1 free \(/);
    assert.match(reason, /GPU 0 GPU-00000000\.\. held by dep\/svc\/0 \(c0ffeedepsvc\)/);
    assert.doesNotMatch(reason, /GPU 1 /, 'the free GPU is not listed as a reason');
  });

  test('memory too low: the GPU does not qualify and the reason gives its free memory', () => {
    const gpus = [gpu(0, { memoryFreeMib: 1000 }), gpu(1, { memoryFreeMib: 30000 })];
    const r = assignGpus(gpus, [], [req('d/s/0', 1, 20000), req('d/s/1', 1, 20000)]);
    assert.deepEqual(ok(r.get('d/s/0')), [uuid(1)], 'skips GPU 0, which has too little free');
    const reason = fail(r.get('d/s/1'));
    assert.match(reason, /^needs 1 GPU with 20000 MiB free each, 0 free \(/);
    assert.match(reason, /GPU 0 GPU-00000000\.\. has 1000 MiB free/);
    assert.match(reason, /GPU 1 GPU-00000001\.\. given to d\/s\/0 in this round/);
  });

  test('memory exactly enough qualifies; memory 0 ignores free memory', () => {
    const gpus = [gpu(0, { memoryFreeMib: 20000 })];
    assert.deepEqual(ok(assignGpus(gpus, [], [req('a/b/0', 1, 20000)]).get('a/b/0')), [uuid(0)]);
    fail(assignGpus(gpus, [], [req('a/b/0', 1, 20001)]).get('a/b/0'));
    const full = [gpu(0, { memoryFreeMib: 0 })];
    assert.deepEqual(ok(assignGpus(full, [], [req('a/b/0', 1, 0)]).get('a/b/0')), [uuid(0)]);
  });

  test('unknown free memory: the total is the bound; neither known qualifies', () => {
    const small = [{ uuid: uuid(0), index: 0, memoryTotalMib: 16000 }];
    assert.match(fail(assignGpus(small, [], [req('a/b/0', 1, 20000)]).get('a/b/0')), /has 16000 MiB in all/);
    const unknown = [{ uuid: uuid(0), index: 0 }];
    assert.deepEqual(ok(assignGpus(unknown, [], [req('a/b/0', 1, 20000)]).get('a/b/0')), [uuid(0)]);
  });

  test('rolling update: the old replica (same key) still holds its GPU, so the new one gets another', () => {
    const gpus = node(2);
    const r = assignGpus(gpus, [hold('d/s/0', 0)], [req('d/s/0', 1)]);
    assert.deepEqual(ok(r.get('d/s/0')), [uuid(1)]);
    // With no spare GPU the new replica must wait for the old one to go.
    const tight = assignGpus([gpu(0)], [hold('d/s/0', 0)], [req('d/s/0', 1)]);
    assert.match(fail(tight.get('d/s/0')), /GPU 0 .* held by d\/s\/0/);
    // The planner's question, answered the same way.
    assert.deepEqual(
      freeGpus(gpus, [hold('d/s/0', 0)]).map((g) => g.uuid),
      [uuid(1)],
    );
    assert.deepEqual(freeGpus([gpu(0)], [hold('d/s/0', 0)]), []);
  });

  test('a stopped container still holds its GPUs (holdings do not say running or not)', () => {
    const r = assignGpus(node(1), [hold('d/s/0', 0)], [req('d/s/1', 1)]);
    fail(r.get('d/s/1'));
  });

  test('all or nothing: a failed request takes nothing, the next one gets those GPUs', () => {
    const r = assignGpus(node(3), [hold('x/y/0', 2)], [req('d/big/0', 3), req('d/small/0', 2)]);
    fail(r.get('d/big/0'));
    assert.deepEqual(ok(r.get('d/small/0')), [uuid(0), uuid(1)]);
  });

  test('deterministic: input order of GPUs does not matter, lowest index first', () => {
    const gpus = [gpu(3), gpu(1), gpu(2), gpu(0)];
    const r = assignGpus(gpus, [hold('o/o/0', 1)], [req('d/s/0', 2), req('d/s/1', 1)]);
    assert.deepEqual(ok(r.get('d/s/0')), [uuid(0), uuid(2)]);
    assert.deepEqual(ok(r.get('d/s/1')), [uuid(3)]);
    assert.deepEqual(
      assignGpus([...gpus].reverse(), [hold('o/o/0', 1)], [req('d/s/0', 2), req('d/s/1', 1)]),
      r,
    );
  });

  test('MIG-mode GPUs are not assigned whole, and the reason says MIG', () => {
    const gpus = [gpu(0, { migMode: true }), gpu(1)];
    const r = assignGpus(gpus, [], [req('d/s/0', 1), req('d/s/1', 1)]);
    assert.deepEqual(ok(r.get('d/s/0')), [uuid(1)]);
    assert.match(fail(r.get('d/s/1')), /GPU 0 GPU-00000000\.\. is in MIG mode/);
    const two = assignGpus(gpus, [], [req('d/s/0', 2)]);
    assert.equal(
      fail(two.get('d/s/0')),
      'needs 2 GPUs per replica, the node has 2 but only 1 can be assigned whole (GPU 0 GPU-00000000.. in MIG mode)',
    );
    assert.deepEqual(
      freeGpus(gpus, []).map((g) => g.uuid),
      [uuid(1)],
    );
  });

  test('holdings of UUIDs the node no longer has take no capacity, and are named on failure', () => {
    const gone: GpuHolding = {
      key: 'old/s/0',
      containerId: '',
      uuids: ['GPU-deadbeef-0000-0000-0000-000000000000'],
    };
    const r = assignGpus(node(1), [gone], [req('d/s/0', 1)]);
    assert.deepEqual(ok(r.get('d/s/0')), [uuid(0)]);
    const r2 = assignGpus(node(1), [gone, hold('d/s/0', 0)], [req('d/s/1', 1)]);
    assert.match(
      fail(r2.get('d/s/1')),
      /old\/s\/0 is labelled with GPU-deadbeef\.\., which this node does not have/,
    );
    assert.equal(freeGpus(node(1), [gone]).length, 1);
  });

  test('a GPU held by two containers names both', () => {
    const r = assignGpus(node(1), [hold('a/b/0', 0), hold('a/b/1', 0)], [req('a/b/2', 1)]);
    assert.match(fail(r.get('a/b/2')), /held by a\/b\/0 \(\w+\), a\/b\/1 \(\w+\)/);
  });

  test('a bad count is refused without consuming anything; a duplicate key keeps its first result', () => {
    const r = assignGpus(
      node(2),
      [],
      [req('a/b/0', -1), req('a/b/1', 1.5), req('a/b/2', 1), req('a/b/2', 2)],
    );
    assert.match(fail(r.get('a/b/0')), /whole number/);
    assert.match(fail(r.get('a/b/1')), /whole number/);
    assert.deepEqual(ok(r.get('a/b/2')), [uuid(0)]);
    assert.equal(r.size, 3);
    assert.deepEqual(freeGpus(node(2), []).length, 2);
  });
});

describe('deviceRequestsFor', () => {
  test('GPUs by UUID, one nvidia request', () => {
    assert.deepEqual(deviceRequestsFor([uuid(3), uuid(1)]), [
      { Driver: 'nvidia', DeviceIDs: [uuid(3), uuid(1)], Capabilities: [['gpu']] },
    ]);
  });
  test('no GPUs, no device request', () => {
    assert.deepEqual(deviceRequestsFor([]), []);
  });
  test('the result does not alias the input', () => {
    const ids = [uuid(0)];
    const [d] = deviceRequestsFor(ids);
    d?.DeviceIDs.push('x');
    assert.deepEqual(ids, [uuid(0)]);
  });
});

// ---- properties --------------------------------------------------------------------------------

/** A node of up to 8 GPUs with distinct UUIDs and indices, in any order, some MIG, mixed memory. */
const gpusArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 15 }), { maxLength: 8 })
  .chain((idx) =>
    fc.tuple(
      ...idx.map((i) =>
        fc.record({
          uuid: fc.constant(uuid(i)),
          index: fc.constant(i),
          memoryFreeMib: fc.option(fc.constantFrom(0, 8000, 16000, 40000, 80000), { nil: undefined }),
          migMode: fc.option(fc.boolean(), { nil: undefined, freq: 3 }),
        }),
      ),
    ),
  )
  .map((gs) => gs as GpuInfo[]);

/** Holdings over the node's UUIDs and some the node does not have (indices 16..19). */
const heldArb = fc.array(
  fc.record({
    key: fc.constantFrom('o/s/0', 'o/s/1', 'd/s/0', 'd/s/1'),
    containerId: fc.stringMatching(/^[0-9a-f]{12}$/),
    uuids: fc.uniqueArray(fc.integer({ min: 0, max: 19 }), { maxLength: 3 }).map((xs) => xs.map(uuid)),
  }),
  { maxLength: 4 },
);

const requestsArb = fc
  .array(
    fc.record({
      count: fc.integer({ min: 0, max: 5 }),
      memoryMib: fc.constantFrom(0, 0, 10000, 20000, 60000),
    }),
    { maxLength: 6 },
  )
  .map((rs) => rs.map((r, i) => ({ key: `d/s/${i}`, ...r })));

const okUuids = (m: Map<string, GpuAssignment>) => [...m.values()].flatMap((a) => (a.ok ? a.uuids : []));

describe('assignGpus: properties', () => {
  const runs = { numRuns: 500 };

  test('no UUID is given twice, nor given while held; every given UUID exists and is whole', () => {
    fc.assert(
      fc.property(gpusArb, heldArb, requestsArb, (gpus, held, requests) => {
        const r = assignGpus(gpus, held, requests);
        const given = okUuids(r);
        assert.equal(new Set(given).size, given.length, 'a UUID given to two requests');
        const heldSet = new Set(held.flatMap((h) => h.uuids));
        const byUuid = new Map(gpus.map((g) => [g.uuid, g]));
        for (const u of given) {
          assert.ok(!heldSet.has(u), `${u} is held and was given`);
          const g = byUuid.get(u);
          assert.ok(g, `${u} is not on the node`);
          assert.notEqual(g.migMode, true, `${u} is in MIG mode`);
        }
      }),
      runs,
    );
  });

  test('every request has a result; ok ones have exactly count distinct GPUs with the memory asked for', () => {
    fc.assert(
      fc.property(gpusArb, heldArb, requestsArb, (gpus, held, requests) => {
        const r = assignGpus(gpus, held, requests);
        assert.equal(r.size, requests.length);
        const byUuid = new Map(gpus.map((g) => [g.uuid, g]));
        for (const q of requests) {
          const a = r.get(q.key);
          assert.ok(a);
          if (!a.ok) {
            assert.ok(a.reason.length > 0);
            continue;
          }
          assert.equal(a.uuids.length, q.count);
          assert.equal(new Set(a.uuids).size, q.count);
          for (const u of a.uuids) {
            const free = byUuid.get(u)?.memoryFreeMib;
            if (q.memoryMib > 0 && free !== undefined) assert.ok(free >= q.memoryMib);
          }
          const idx = a.uuids.map((u) => byUuid.get(u)?.index ?? -1);
          assert.deepEqual(
            idx,
            [...idx].sort((x, y) => x - y),
            'lowest index first',
          );
        }
      }),
      runs,
    );
  });

  test('enough free qualifying GPUs for all (equal memory requirement) → all succeed', () => {
    fc.assert(
      fc.property(
        gpusArb,
        heldArb,
        fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 6 }),
        fc.constantFrom(0, 10000, 40000),
        (gpus, held, counts, memoryMib) => {
          const requests = counts.map((count, i) => ({ key: `d/s/${i}`, count, memoryMib }));
          const qualifying = freeGpus(gpus, held).filter(
            (g) => memoryMib === 0 || g.memoryFreeMib === undefined || g.memoryFreeMib >= memoryMib,
          );
          const need = counts.reduce((a, b) => a + b, 0);
          fc.pre(qualifying.length >= need);
          const r = assignGpus(gpus, held, requests);
          for (const q of requests)
            assert.ok(r.get(q.key)?.ok, `${q.key} failed: ${JSON.stringify(r.get(q.key))}`);
        },
      ),
      runs,
    );
  });

  test('a failed request consumes nothing: dropping it changes no other result', () => {
    fc.assert(
      fc.property(gpusArb, heldArb, requestsArb, (gpus, held, requests) => {
        const r = assignGpus(gpus, held, requests);
        const kept = requests.filter((q) => r.get(q.key)?.ok);
        const again = assignGpus(gpus, held, kept);
        for (const q of kept) assert.deepEqual(again.get(q.key), r.get(q.key));
      }),
      runs,
    );
  });

  test('a failed request leaves its GPUs to the next one', () => {
    fc.assert(
      fc.property(gpusArb, heldArb, fc.integer({ min: 1, max: 4 }), (gpus, held, small) => {
        const free = freeGpus(gpus, held);
        fc.pre(free.length >= small);
        // First request one more than there is; it must fail and take nothing.
        const r = assignGpus(gpus, held, [req('big/s/0', free.length + 1), req('small/s/0', small)]);
        assert.equal(r.get('big/s/0')?.ok, false);
        assert.deepEqual(
          ok(r.get('small/s/0')),
          free.slice(0, small).map((g) => g.uuid),
        );
      }),
      runs,
    );
  });

  test('stable: same input → same output; GPU and holding order do not matter', () => {
    fc.assert(
      fc.property(gpusArb, heldArb, requestsArb, (gpus, held, requests) => {
        const r = assignGpus(gpus, held, requests);
        assert.deepEqual(assignGpus(gpus, held, requests), r);
        assert.deepEqual(assignGpus([...gpus].reverse(), [...held].reverse(), requests), r);
        // Applying the result as holdings leaves nothing more to give to the same requests.
        const now: GpuHolding[] = [
          ...held,
          ...[...r].flatMap(([key, a]) =>
            a.ok && a.uuids.length ? [{ key, containerId: '', uuids: a.uuids }] : [],
          ),
        ];
        const taken = new Set(now.flatMap((h) => h.uuids));
        assert.ok(freeGpus(gpus, now).every((g) => !taken.has(g.uuid)));
      }),
      runs,
    );
  });

  test('freeGpus agrees with assignGpus: one request of n (no memory) fits iff n ≤ free', () => {
    fc.assert(
      fc.property(gpusArb, heldArb, fc.integer({ min: 1, max: 9 }), (gpus, held, n) => {
        const free = freeGpus(gpus, held);
        const a = assignGpus(gpus, held, [req('d/s/0', n)]).get('d/s/0');
        assert.equal(a?.ok, n <= free.length);
        if (a?.ok)
          assert.deepEqual(
            a.uuids,
            free.slice(0, n).map((g) => g.uuid),
          );
      }),
      runs,
    );
  });
});
