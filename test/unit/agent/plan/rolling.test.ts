import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { GpuInfo } from '../../../../agent/src/gpu/assign.js';
import type { Health } from '../../../../agent/src/health/tracker.js';
import { type DesiredContainer, keyOf, type ObservedContainer } from '../../../../agent/src/model.js';
import { type PlanContext, planRound, type Step } from '../../../../agent/src/plan/planner.js';

/**
 * Rolling updates, health gating, restarts and GPU placement in the planner. The invariant DESIGN
 * asks for is checked as a property at the end: a ready replica is never stopped before its
 * replacement is ready, unless no second copy can exist (fixed port, no free GPU) — and then the
 * plan says so.
 */

const HEALTH = { path: '/health', intervalMs: 1000, timeoutMs: 500, retries: 3, startPeriodMs: 0 };

function want(
  service: string,
  replica: number,
  hash: string,
  over: Partial<DesiredContainer> = {},
): DesiredContainer {
  return {
    key: keyOf('dep', service, replica),
    name: `fleet-n-dep-${service}-${replica}-${hash}`,
    hash,
    revision: 2,
    gpus: 0,
    gpuMemoryMib: 0,
    health: HEALTH,
    spec: {
      node: 'n',
      deployment: 'dep',
      service,
      replica,
      image: 'img',
      env: {},
      port: 8080,
      publish: 0,
      command: [],
      volumes: [],
    },
    ...over,
  };
}

function have(
  id: string,
  service: string,
  replica: number,
  hash: string,
  over: Partial<ObservedContainer> = {},
): ObservedContainer {
  return {
    id,
    key: keyOf('dep', service, replica),
    name: `c-${id}`,
    deployment: 'dep',
    service,
    replica,
    hash,
    image: 'img',
    state: 'running',
    createdAtMs: 0,
    gpus: [],
    ...over,
  };
}

const brief = (steps: Step[]) =>
  steps.map((s) =>
    s.kind === 'pull'
      ? `pull ${s.image}`
      : s.kind === 'create'
        ? `create ${s.container.key}${s.gpus.length ? ` on ${s.gpus.join(',')}` : ''}`
        : `${s.kind} ${s.id}`,
  );

const ctx = (health: Record<string, string>, over: Partial<PlanContext> = {}): PlanContext => ({
  imagesPresent: new Set(['img']),
  now: 10_000,
  health: new Map(Object.entries(health)) as Map<string, Health>,
  ...over,
});

const gpu = (i: number, free = 80_000): GpuInfo => ({
  uuid: `GPU-${i}`,
  index: i,
  memoryTotalMib: 81_920,
  memoryFreeMib: free,
});

describe('rolling update with two replicas', () => {
  const desired = [want('api', 0, 'new'), want('api', 1, 'new')];
  const olds = [have('o0', 'api', 0, 'old'), have('o1', 'api', 1, 'old')];
  const healthy = { o0: 'healthy', o1: 'healthy' };

  test('step 1: one new replica starts beside the old ones; the other waits its turn', () => {
    const r = planRound(olds, desired, ctx(healthy));
    assert.deepEqual(brief(r.steps), ['create dep/api/0']);
    assert.deepEqual(
      r.waits.map((w) => `${w.key} ${w.kind}`),
      ['dep/api/1 one-at-a-time'],
    );
  });

  test('step 2: the new replica is starting: nothing is stopped, nothing else starts', () => {
    const r = planRound([...olds, have('n0', 'api', 0, 'new')], desired, ctx({ ...healthy, n0: 'starting' }));
    assert.deepEqual(brief(r.steps), []);
    assert.deepEqual(r.waits.map((w) => `${w.key} ${w.kind}`).sort(), [
      'dep/api/0 health',
      'dep/api/1 one-at-a-time',
    ]);
  });

  test('step 3: the new replica is healthy: its predecessor goes and the next replica starts', () => {
    const r = planRound([...olds, have('n0', 'api', 0, 'new')], desired, ctx({ ...healthy, n0: 'healthy' }));
    assert.deepEqual(brief(r.steps), ['remove o0', 'create dep/api/1']);
  });

  test('step 4: both new replicas healthy: the last old one goes', () => {
    const r = planRound(
      [olds[1]!, have('n0', 'api', 0, 'new'), have('n1', 'api', 1, 'new')],
      desired,
      ctx({ o1: 'healthy', n0: 'healthy', n1: 'healthy' }),
    );
    assert.deepEqual(brief(r.steps), ['remove o1']);
  });

  test('a new revision that never becomes healthy leaves the old replicas serving', () => {
    const observed = [...olds, have('n0', 'api', 0, 'new')];
    const r = planRound(
      observed,
      desired,
      ctx({ ...healthy, n0: 'unhealthy' }, { restartNotBefore: new Map([['dep/api/0', 20_000]]) }),
    );
    assert.deepEqual(brief(r.steps), []);
    assert.ok(r.waits.some((w) => w.key === 'dep/api/0' && w.kind === 'backoff' && w.untilMs === 20_000));
    const crashed = planRound(
      [...olds, have('n0', 'api', 0, 'new', { state: 'exited', exitCode: 1 })],
      desired,
      ctx(healthy, { restartNotBefore: new Map([['dep/api/0', 20_000]]) }),
    );
    assert.deepEqual(
      brief(crashed.steps),
      [],
      'the old replica is not removed while the new one crash-loops',
    );
  });
});

describe('restarts', () => {
  test('an exited replica is started at once the first time, and not before its backoff after that', () => {
    const exited = [have('c', 'api', 0, 'h', { state: 'exited', exitCode: 137 })];
    assert.deepEqual(brief(planRound(exited, [want('api', 0, 'h')], ctx({})).steps), ['start c']);
    const later = planRound(
      exited,
      [want('api', 0, 'h')],
      ctx({}, { restartNotBefore: new Map([['dep/api/0', 12_000]]) }),
    );
    assert.deepEqual(brief(later.steps), []);
    assert.equal(later.waits[0]?.untilMs, 12_000);
    assert.match(later.waits[0]!.message, /code 137/);
  });

  test('an unhealthy replica is restarted; a starting one is left alone', () => {
    const c = [have('c', 'api', 0, 'h')];
    assert.deepEqual(brief(planRound(c, [want('api', 0, 'h')], ctx({ c: 'unhealthy' })).steps), [
      'restart c',
    ]);
    assert.deepEqual(brief(planRound(c, [want('api', 0, 'h')], ctx({ c: 'starting' })).steps), []);
  });

  test('a service without a probe is ready when running, and never restarted for health', () => {
    const d = want('api', 0, 'h', { health: undefined });
    assert.deepEqual(brief(planRound([have('c', 'api', 0, 'h')], [d], ctx({ c: 'unhealthy' })).steps), []);
  });
});

describe('GPUs', () => {
  const gpus2 = (n: number) => want('llm', n, 'new', { gpus: 1 });

  test('two replicas get two distinct GPUs by UUID', () => {
    const r = planRound([], [gpus2(0), gpus2(1)], ctx({}, { gpus: [gpu(0), gpu(1)] }));
    assert.deepEqual(brief(r.steps), ['create dep/llm/0 on GPU-0', 'create dep/llm/1 on GPU-1']);
  });

  test('a replica that does not fit is unschedulable and not created', () => {
    const r = planRound([], [gpus2(0), gpus2(1)], ctx({}, { gpus: [gpu(0)] }));
    assert.deepEqual(brief(r.steps), ['create dep/llm/0 on GPU-0']);
    assert.equal(r.waits[0]?.kind, 'unschedulable');
    assert.equal(r.waits[0]?.key, 'dep/llm/1');
  });

  test('update with a free GPU: the new replica starts on it before the old one stops', () => {
    const old = have('o', 'llm', 0, 'old', { gpus: ['GPU-0'] });
    const r = planRound([old], [gpus2(0)], ctx({ o: 'healthy' }, { gpus: [gpu(0), gpu(1)] }));
    assert.deepEqual(brief(r.steps), ['create dep/llm/0 on GPU-1']);
  });

  test('update with no free GPU: stop, then start on the freed GPU, and the gap is reported', () => {
    const old = have('o', 'llm', 0, 'old', { gpus: ['GPU-0'] });
    const r = planRound([old], [gpus2(0)], ctx({ o: 'healthy' }, { gpus: [gpu(0)] }));
    assert.deepEqual(brief(r.steps), ['remove o', 'create dep/llm/0 on GPU-0']);
    assert.ok(r.waits.some((w) => w.kind === 'gap' && /no free GPU/.test(w.message)));
  });

  test('a fixed host port: stop first, gap reported', () => {
    const d = want('api', 0, 'new', { spec: { ...want('api', 0, 'new').spec, publish: 18080 } });
    const r = planRound([have('o', 'api', 0, 'old')], [d], ctx({ o: 'healthy' }));
    assert.deepEqual(brief(r.steps), ['remove o', 'create dep/api/0']);
    assert.ok(r.waits.some((w) => w.kind === 'gap' && /18080/.test(w.message)));
  });
});

// ---- property: never two replicas on one GPU; never stop a ready replica before its replacement is ready ----

const arbWorld = fc.record({
  replicas: fc.integer({ min: 1, max: 3 }),
  gpusPer: fc.integer({ min: 0, max: 2 }),
  nodeGpus: fc.integer({ min: 0, max: 6 }),
  oldStates: fc.array(fc.constantFrom('running', 'exited', 'absent'), { minLength: 3, maxLength: 3 }),
  oldHealth: fc.array(fc.constantFrom('healthy', 'starting', 'unhealthy'), { minLength: 3, maxLength: 3 }),
  newState: fc.array(fc.constantFrom('absent', 'starting', 'healthy', 'unhealthy', 'exited'), {
    minLength: 3,
    maxLength: 3,
  }),
});

test('property: no GPU is given twice, and a ready old replica is removed only when its replacement is ready or no second copy fits', () => {
  fc.assert(
    fc.property(arbWorld, (w) => {
      const gpus = Array.from({ length: w.nodeGpus }, (_, i) => gpu(i));
      const desired = Array.from({ length: w.replicas }, (_, i) =>
        want('llm', i, 'new', { gpus: w.gpusPer }),
      );
      const observed: ObservedContainer[] = [];
      const health: Record<string, string> = {};
      let next = 0;
      const takeGpus = () => {
        const out: string[] = [];
        for (const g of gpus) {
          if (out.length === w.gpusPer) break;
          if (!observed.some((o) => o.gpus.includes(g.uuid))) out.push(g.uuid);
        }
        return out.length === w.gpusPer ? out : undefined;
      };
      for (let i = 0; i < w.replicas; i++) {
        const oldGpus = takeGpus();
        if (w.oldStates[i] !== 'absent' && oldGpus) {
          observed.push(have(`o${i}`, 'llm', i, 'old', { state: w.oldStates[i]!, gpus: oldGpus }));
          health[`o${i}`] = w.oldHealth[i]!;
        }
        const newGpus = takeGpus();
        if (w.newState[i] !== 'absent' && newGpus) {
          const state = w.newState[i] === 'exited' ? 'exited' : 'running';
          observed.push(have(`n${next++}`, 'llm', i, 'new', { state, gpus: newGpus }));
          health[`n${next - 1}`] = w.newState[i]!;
        }
      }
      const r = planRound(observed, desired, ctx(health, { gpus }));
      // GPUs: after removals, what stays plus what is created never shares a UUID.
      const removed = new Set(r.steps.filter((s) => s.kind === 'remove').map((s) => s.id));
      const inUse = observed.filter((o) => !removed.has(o.id)).flatMap((o) => o.gpus);
      for (const s of r.steps) if (s.kind === 'create') inUse.push(...s.gpus);
      assert.equal(new Set(inUse).size, inUse.length, `a GPU given twice: ${inUse.join(',')}`);
      for (const s of r.steps) if (s.kind === 'create') assert.equal(s.gpus.length, w.gpusPer);
      // Readiness: a ready old replica goes only when its replacement is ready, or a gap is reported.
      for (const id of removed) {
        const o = observed.find((x) => x.id === id)!;
        if (o.hash !== 'old' || o.state !== 'running' || health[id] !== 'healthy') continue;
        const replacementReady = observed.some(
          (n) => n.key === o.key && n.hash === 'new' && n.state === 'running' && health[n.id] === 'healthy',
        );
        const gap = r.waits.some((x) => x.key === o.key && x.kind === 'gap');
        assert.ok(
          replacementReady || gap,
          `${o.key}: ready old replica removed with no ready replacement and no gap reported`,
        );
      }
      // One at a time: at most one replica of the service starts beside a serving predecessor.
      const surges = r.steps.filter(
        (s) =>
          s.kind === 'create' &&
          observed.some(
            (o) =>
              o.key === s.container.key && o.hash === 'old' && o.state === 'running' && !removed.has(o.id),
          ),
      );
      assert.ok(surges.length <= 1, `${surges.length} replicas updated at once`);
    }),
    { numRuns: 1000 },
  );
});

describe('replicas with an engine (two containers, one unit)', () => {
  const engine = { image: 'vllm', env: {}, command: [], port: 8000, volumes: [] };
  const unit = (hash: string) =>
    want('llm', 0, hash, {
      gpus: 1,
      engineHealth: HEALTH,
      spec: { ...want('llm', 0, hash).spec, engine },
    });
  const front = (id: string, hash: string, over: Partial<ObservedContainer> = {}) =>
    have(id, 'llm', 0, hash, over);
  const eng = (id: string, hash: string, over: Partial<ObservedContainer> = {}) =>
    have(id, 'llm', 0, hash, { part: 'engine', gpus: ['GPU-0'], ...over });
  const gpus = { gpus: [gpu(0), gpu(1)] };

  test('both running and healthy: nothing to do, and the unit is ready', () => {
    const r = planRound(
      [front('f', 'h'), eng('e', 'h')],
      [unit('h')],
      ctx({ f: 'healthy', e: 'healthy' }, gpus),
    );
    assert.deepEqual(brief(r.steps), []);
    assert.equal(r.health.get('f'), 'healthy');
    assert.deepEqual(
      r.replicas.map((o) => o.id),
      ['f'],
      'the engine is folded into its replica',
    );
  });

  test('the engine failing its probe restarts both, the engine after its replica', () => {
    const r = planRound(
      [front('f', 'h'), eng('e', 'h')],
      [unit('h')],
      ctx({ f: 'healthy', e: 'unhealthy' }, gpus),
    );
    assert.deepEqual(brief(r.steps), ['restart f']);
    assert.deepEqual((r.steps[0] as { parts?: string[] }).parts, ['e']);
  });

  test('the engine exited: both restart; the replica exited: both start', () => {
    const a = planRound(
      [front('f', 'h'), eng('e', 'h', { state: 'exited' })],
      [unit('h')],
      ctx({ f: 'healthy' }, gpus),
    );
    assert.deepEqual(brief(a.steps), ['restart f']);
    assert.deepEqual((a.steps[0] as { parts?: string[] }).parts, ['e']);
    const b = planRound([front('f', 'h', { state: 'exited' }), eng('e', 'h')], [unit('h')], ctx({}, gpus));
    assert.deepEqual(brief(b.steps), ['start f']);
    assert.deepEqual((b.steps[0] as { parts?: string[] }).parts, ['e']);
  });

  test('the engine container is gone: the unit is replaced; an engine without its replica is removed', () => {
    const a = planRound([front('f', 'h')], [unit('h')], ctx({ f: 'healthy' }, gpus));
    assert.deepEqual(brief(a.steps), ['remove f', 'create dep/llm/0 on GPU-0']);
    const b = planRound([eng('e', 'h')], [unit('h')], ctx({}, gpus));
    assert.deepEqual(brief(b.steps), ['remove e', 'create dep/llm/0 on GPU-0'], 'the orphan frees its GPU');
  });

  test('an update: the new unit starts on the free GPU; the old unit goes with its engine once the new one is ready', () => {
    const old = [front('f', 'old'), eng('e', 'old')];
    const a = planRound(old, [unit('new')], ctx({ f: 'healthy', e: 'healthy' }, gpus));
    assert.deepEqual(brief(a.steps), ['create dep/llm/0 on GPU-1']);
    const b = planRound(
      [...old, front('f2', 'new'), eng('e2', 'new', { gpus: ['GPU-1'] })],
      [unit('new')],
      ctx({ f: 'healthy', e: 'healthy', f2: 'healthy', e2: 'healthy' }, gpus),
    );
    assert.deepEqual(brief(b.steps), ['remove f']);
    assert.deepEqual((b.steps[0] as { parts?: string[] }).parts, ['e']);
  });
});
