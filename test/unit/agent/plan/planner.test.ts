import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type DesiredContainer, keyOf, type ObservedContainer } from '../../../../agent/src/model.js';
import { plan, type Step } from '../../../../agent/src/plan/planner.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

const NODE = 'n1';

function desired(
  deployment: string,
  service: string,
  replica: number,
  hash: string,
  image = 'img:1',
): DesiredContainer {
  return {
    key: keyOf(deployment, service, replica),
    name: `fleet-${NODE}-${deployment}-${service}-${replica}-${hash}`,
    hash,
    revision: 1,
    gpus: 0,
    gpuMemoryMib: 0,
    spec: {
      node: NODE,
      deployment,
      service,
      replica,
      image,
      env: {},
      port: 0,
      publish: 0,
      command: [],
      volumes: [],
    },
  };
}

function observed(
  id: string,
  deployment: string,
  service: string,
  replica: number,
  hash: string,
  state = 'running',
): ObservedContainer {
  return {
    id,
    key: keyOf(deployment, service, replica),
    name: `fleet-${NODE}-${deployment}-${service}-${replica}-${hash}-${id}`,
    deployment,
    service,
    replica,
    hash,
    image: 'img:1',
    state,
    createdAtMs: 0,
    gpus: [],
  };
}

const images = (...refs: string[]) => ({ imagesPresent: new Set(refs) });

/** A compact, order-preserving view of steps: `remove c1`, `pull img`, `create d/s/0`, `start c2`. */
function brief(steps: Step[]): string[] {
  return steps.map((s) => {
    if (s.kind === 'pull') return `pull ${s.image}`;
    if (s.kind === 'create') return `create ${s.container.key}#${s.container.hash}`;
    return `${s.kind} ${s.id}`;
  });
}

const ORDER: Record<Step['kind'], number> = { remove: 0, pull: 1, create: 2, start: 3, restart: 3 };

describe('plan()', () => {
  const cases: {
    name: string;
    observed: ObservedContainer[];
    desired: DesiredContainer[];
    images: string[];
    want: string[];
  }[] = [
    { name: 'nothing observed, nothing desired: no steps', observed: [], desired: [], images: [], want: [] },
    {
      name: 'missing container with image present: create',
      observed: [],
      desired: [desired('web', 'api', 0, 'h1')],
      images: ['img:1'],
      want: ['create web/api/0#h1'],
    },
    {
      name: 'image missing: one pull per image, no create',
      observed: [],
      desired: [
        desired('web', 'api', 0, 'h1', 'img:a'),
        desired('web', 'api', 1, 'h1', 'img:a'),
        desired('web', 'db', 0, 'h2', 'img:b'),
      ],
      images: [],
      want: ['pull img:a', 'pull img:b'],
    },
    {
      name: 'image missing for a stale replica: pull only, the old container is kept while pulling',
      observed: [observed('c1', 'web', 'api', 0, 'old')],
      desired: [desired('web', 'api', 0, 'new', 'img:2')],
      images: ['img:1'],
      want: ['pull img:2'],
    },
    {
      name: 'a serving replica of a stale spec: the new one starts beside it (the old one stays until it is ready)',
      observed: [observed('c1', 'web', 'api', 0, 'old')],
      desired: [desired('web', 'api', 0, 'new')],
      images: ['img:1'],
      want: ['create web/api/0#new'],
    },
    {
      name: 'a stopped replica of a stale spec: removed, then the new one created',
      observed: [observed('c1', 'web', 'api', 0, 'old', 'exited')],
      desired: [desired('web', 'api', 0, 'new')],
      images: ['img:1'],
      want: ['remove c1', 'create web/api/0#new'],
    },
    {
      name: 'exited container with the desired hash: start it, do not recreate',
      observed: [observed('c1', 'web', 'api', 0, 'h1', 'exited')],
      desired: [desired('web', 'api', 0, 'h1')],
      images: ['img:1'],
      want: ['start c1'],
    },
    {
      name: 'a created (never started) container with the desired hash is started even when its image is gone',
      observed: [observed('c1', 'web', 'api', 0, 'h1', 'created')],
      desired: [desired('web', 'api', 0, 'h1')],
      images: [],
      want: ['start c1'],
    },
    {
      name: 'running container with the desired hash: nothing to do',
      observed: [observed('c1', 'web', 'api', 0, 'h1')],
      desired: [desired('web', 'api', 0, 'h1')],
      images: [],
      want: [],
    },
    {
      name: 'duplicates: keep the running one, remove the rest',
      observed: [
        observed('c1', 'web', 'api', 0, 'h1', 'exited'),
        observed('c2', 'web', 'api', 0, 'h1', 'running'),
        observed('c3', 'web', 'api', 0, 'h1', 'created'),
      ],
      desired: [desired('web', 'api', 0, 'h1')],
      images: ['img:1'],
      want: ['remove c1', 'remove c3'],
    },
    {
      name: 'duplicates none running: keep the first and start it',
      observed: [
        observed('c1', 'web', 'api', 0, 'h1', 'exited'),
        observed('c2', 'web', 'api', 0, 'h1', 'exited'),
      ],
      desired: [desired('web', 'api', 0, 'h1')],
      images: ['img:1'],
      want: ['remove c2', 'start c1'],
    },
    {
      name: 'a matching container exists next to a stale one: the stale one goes, no create',
      observed: [observed('c1', 'web', 'api', 0, 'old'), observed('c2', 'web', 'api', 0, 'h1')],
      desired: [desired('web', 'api', 0, 'h1')],
      images: [],
      want: ['remove c1'],
    },
    {
      name: 'undesired containers are removed, whatever their state',
      observed: [observed('c1', 'web', 'api', 0, 'h1'), observed('c2', 'old', 'x', 3, 'h9', 'exited')],
      desired: [],
      images: [],
      want: ['remove c1', 'remove c2'],
    },
    {
      name: 'a container of another deployment stays only if desired',
      observed: [observed('c1', 'web', 'api', 0, 'h1'), observed('c2', 'db', 'pg', 0, 'h2')],
      desired: [desired('db', 'pg', 0, 'h2')],
      images: [],
      want: ['remove c1'],
    },
    {
      name: 'replicas scaled down: the extra replica goes',
      observed: [observed('c1', 'web', 'api', 0, 'h1'), observed('c2', 'web', 'api', 1, 'h1')],
      desired: [desired('web', 'api', 0, 'h1')],
      images: [],
      want: ['remove c2'],
    },
    {
      name: 'order: all removes, then pulls, then creates, then starts',
      observed: [
        observed('c1', 'web', 'a', 0, 'h1', 'exited'),
        observed('c2', 'web', 'b', 0, 'old'),
        observed('c3', 'gone', 'x', 0, 'h1'),
      ],
      desired: [
        desired('web', 'a', 0, 'h1'),
        desired('web', 'b', 0, 'new'),
        desired('web', 'c', 0, 'h3', 'img:c'),
      ],
      images: ['img:1'],
      want: ['remove c3', 'pull img:c', 'create web/b/0#new', 'start c1'],
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const steps = plan(c.observed, c.desired, images(...c.images));
      assert.deepEqual(brief(steps), c.want);
      for (const s of steps) assert.ok(s.reason.length > 0, `${s.kind} has a reason`);
    });
  }

  test('does not mutate its inputs', () => {
    const obs = [observed('c1', 'web', 'api', 0, 'old'), observed('c2', 'x', 'y', 0, 'h')];
    const des = [desired('web', 'api', 0, 'new')];
    const before = JSON.stringify([obs, des]);
    plan(obs, des, images('img:1'));
    assert.equal(JSON.stringify([obs, des]), before);
  });

  test('a stale replacement names the old and new hash in its reason', () => {
    const [remove] = plan(
      [observed('c1', 'web', 'api', 0, 'aaaa', 'exited')],
      [desired('web', 'api', 0, 'bbbb')],
      images('img:1'),
    );
    assert.equal(remove?.kind, 'remove');
    assert.match(remove!.reason, /aaaa.*bbbb/);
  });
});

// ---- property: the plan, applied to a simulated world, converges ----

interface World {
  containers: ObservedContainer[];
  images: Set<string>;
}

const DEPLOYMENTS = ['a', 'b'];
const SERVICES = ['x', 'y'];
const HASHES = ['h1', 'h2', 'h3'];
const IMAGES = ['i1', 'i2', 'i3'];
const STATES = ['running', 'exited', 'created', 'paused', 'restarting', 'dead'];

const arbKey = fc.record({
  deployment: fc.constantFrom(...DEPLOYMENTS),
  service: fc.constantFrom(...SERVICES),
  replica: fc.integer({ min: 0, max: 2 }),
});

const arbObserved = fc.array(
  fc.record({ k: arbKey, hash: fc.constantFrom(...HASHES), state: fc.constantFrom(...STATES) }),
  { maxLength: 10 },
);

const arbDesired = fc.uniqueArray(
  fc.record({ k: arbKey, hash: fc.constantFrom(...HASHES), image: fc.constantFrom(...IMAGES) }),
  { maxLength: 8, selector: (d) => keyOf(d.k.deployment, d.k.service, d.k.replica) },
);

function apply(world: World, steps: Step[], nextId: () => string) {
  for (const s of steps) {
    switch (s.kind) {
      case 'remove': {
        const i = world.containers.findIndex((c) => c.id === s.id);
        assert.ok(i >= 0, `remove of an unknown container ${s.id}`);
        world.containers.splice(i, 1);
        break;
      }
      case 'pull':
        world.images.add(s.image);
        break;
      case 'create': {
        assert.ok(
          world.images.has(s.container.spec.image),
          `create ${s.container.key} before its image is present`,
        );
        const d = s.container;
        world.containers.push({
          ...observed(nextId(), d.spec.deployment, d.spec.service, d.spec.replica, d.hash),
          image: d.spec.image,
        });
        break;
      }
      case 'start':
      case 'restart': {
        const c = world.containers.find((o) => o.id === s.id);
        assert.ok(c, `${s.kind} of an unknown container ${s.id}`);
        c.state = 'running';
        break;
      }
    }
  }
}

test('property: plan steps are ordered, pull each image once, and never touch a replica waiting on its image', () => {
  fc.assert(
    fc.property(arbObserved, arbDesired, fc.subarray(IMAGES), (obs, des, present) => {
      const o = obs.map((x, i) =>
        observed(`c${i}`, x.k.deployment, x.k.service, x.k.replica, x.hash, x.state),
      );
      const d = des.map((x) => desired(x.k.deployment, x.k.service, x.k.replica, x.hash, x.image));
      const steps = plan(o, d, images(...present));
      for (let i = 1; i < steps.length; i++) {
        assert.ok(ORDER[steps[i - 1]!.kind] <= ORDER[steps[i]!.kind], `order: ${brief(steps).join(', ')}`);
      }
      const pulls = steps.filter((s) => s.kind === 'pull').map((s) => s.image);
      assert.equal(new Set(pulls).size, pulls.length, 'one pull per image');
      for (const p of pulls) assert.ok(!present.includes(p), `pull of a present image ${p}`);
      const removed = new Set(steps.filter((s) => s.kind === 'remove').map((s) => s.id));
      assert.equal(
        removed.size,
        steps.filter((s) => s.kind === 'remove').length,
        'no container removed twice',
      );
      for (const want of d) {
        const mine = o.filter((x) => x.key === want.key);
        const waiting = !present.includes(want.spec.image) && !mine.some((x) => x.hash === want.hash);
        if (waiting) {
          assert.ok(
            mine.every((x) => !removed.has(x.id)),
            `${want.key} lost its old container while its image is pulled`,
          );
          assert.ok(!steps.some((s) => s.kind === 'create' && s.container.key === want.key));
        }
      }
    }),
    { numRuns: 500 },
  );
});

test('property: applying plans to a simulated world converges (one replica of a service updated at a time) to one running container per desired key', () => {
  fc.assert(
    fc.property(arbObserved, arbDesired, fc.subarray(IMAGES), (obs, des, present) => {
      let n = 0;
      const nextId = () => `new${n++}`;
      const world: World = {
        containers: obs.map((x, i) =>
          observed(`c${i}`, x.k.deployment, x.k.service, x.k.replica, x.hash, x.state),
        ),
        images: new Set(present),
      };
      const d = des.map((x) => desired(x.k.deployment, x.k.service, x.k.replica, x.hash, x.image));
      let steps = plan(world.containers, d, { imagesPresent: world.images });
      // Three rounds, plus one per replica updated beside its serving predecessor (one at a time).
      for (let round = 0; round < 6 && steps.length > 0; round++) {
        apply(world, steps, nextId);
        steps = plan(world.containers, d, { imagesPresent: new Set(world.images) });
      }
      assert.deepEqual(brief(steps), [], 'the plan is empty after six rounds');
      assert.equal(world.containers.length, d.length, 'exactly one container per desired key, none else');
      for (const want of d) {
        const mine = world.containers.filter((c) => c.key === want.key);
        assert.equal(mine.length, 1, `${want.key}: one container`);
        assert.equal(mine[0]!.hash, want.hash, `${want.key}: desired hash`);
        assert.equal(mine[0]!.state, 'running', `${want.key}: running`);
      }
    }),
    { numRuns: 500 },
  );
});

test('a paused, dead or removing container of the right spec is replaced, not started', async () => {
  const { plan } = await import('../../../../agent/src/plan/planner.js');
  const { fromSpec } = await import('../../../../agent/src/model.js');
  const [d] = fromSpec(
    {
      version: 'v',
      deployments: [
        {
          name: 'dep',
          revision: 1,
          revisionHash: 'h',
          registryAuth: [],
          secrets: [],
          services: [serviceSpec({ name: 'web', image: 'img:1', port: 0 })],
        },
      ],
    },
    'n1',
  );
  for (const state of ['paused', 'dead', 'removing']) {
    const observed = [
      {
        key: d!.key,
        id: 'c1',
        name: 'old',
        deployment: 'dep',
        service: 'web',
        replica: 0,
        hash: d!.hash,
        image: 'img:1',
        state,
        createdAtMs: 0,
        gpus: [],
      },
    ];
    const steps = plan(observed, [d!], { imagesPresent: new Set(['img:1']) });
    assert.deepEqual(
      steps.map((s) => s.kind),
      ['remove', 'create'],
      state,
    );
  }
});
