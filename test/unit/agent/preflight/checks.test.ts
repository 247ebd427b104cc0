import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  evaluate,
  type FileFacts,
  hostPathOf,
  modelFiles,
  type NodeOffer,
} from '../../../../agent/src/preflight/checks.js';
import type { DesiredState } from '../../../../proto/gen/fleet/v1/agent.js';
import { dep, desired, gpu, gpuFacts, offer, one, svc } from './fixtures.js';

const GiB = 2 ** 30;
const OPTS = { minFreeDiskBytes: 10 * GiB, now: 1234 };

describe('hostPathOf', () => {
  const cases: { name: string; path: string; volumes: string[]; want: string | undefined }[] = [
    { name: 'simple prefix', path: '/models/a.gguf', volumes: ['/srv/m:/models'], want: '/srv/m/a.gguf' },
    {
      name: 'nested file keeps the rest of the path',
      path: '/models/sub/dir/a.gguf',
      volumes: ['/srv/m:/models'],
      want: '/srv/m/sub/dir/a.gguf',
    },
    {
      name: 'longest container prefix wins (listed first)',
      path: '/models/big/a.gguf',
      volumes: ['/srv/big:/models/big', '/srv/m:/models'],
      want: '/srv/big/a.gguf',
    },
    {
      name: 'longest container prefix wins (listed last)',
      path: '/models/big/a.gguf',
      volumes: ['/srv/m:/models', '/srv/big:/models/big'],
      want: '/srv/big/a.gguf',
    },
    {
      name: '/models2 does not match /models',
      path: '/models2/x',
      volumes: ['/srv/m:/models'],
      want: undefined,
    },
    {
      name: '/models2 matches its own volume, not /models',
      path: '/models2/x',
      volumes: ['/srv/m:/models', '/srv/m2:/models2'],
      want: '/srv/m2/x',
    },
    {
      name: 'trailing slash on the container path of the volume',
      path: '/models/a.gguf',
      volumes: ['/srv/m:/models/'],
      want: '/srv/m/a.gguf',
    },
    {
      name: 'trailing slashes on the host path',
      path: '/models/a.gguf',
      volumes: ['/srv/m//:/models'],
      want: '/srv/m/a.gguf',
    },
    {
      name: 'trailing slashes on both',
      path: '/models/a.gguf',
      volumes: ['/srv/m/:/models//:ro'],
      want: '/srv/m/a.gguf',
    },
    {
      name: 'mode suffix :ro ignored',
      path: '/models/a.gguf',
      volumes: ['/srv/m:/models:ro'],
      want: '/srv/m/a.gguf',
    },
    {
      name: 'mode suffix :rw,z ignored',
      path: '/models/a.gguf',
      volumes: ['/srv/m:/models:rw,z'],
      want: '/srv/m/a.gguf',
    },
    { name: 'no volumes', path: '/models/a.gguf', volumes: [], want: undefined },
    { name: 'no match', path: '/data/a.gguf', volumes: ['/srv/m:/models', '/srv/c:/cache'], want: undefined },
    { name: 'prefix of a component only', path: '/mod/a', volumes: ['/srv/m:/models'], want: undefined },
  ];
  for (const c of cases) {
    test(c.name, () => assert.equal(hostPathOf(c.path, c.volumes), c.want));
  }

  test('a single-file bind mount maps the file itself', {}, () => {
    assert.equal(hostPathOf('/models/a.gguf', ['/srv/m/a.gguf:/models/a.gguf:ro']), '/srv/m/a.gguf');
  });
});

describe('modelFiles', () => {
  test('services without modelPath are skipped; sha carried; service named deployment/service', () => {
    const d = desired([
      dep('chat', [
        svc({ name: 'web' }),
        svc({
          name: 'llm',
          modelPath: '/models/q.gguf',
          modelSha256: 'abc',
          volumes: ['/srv/models:/models:ro'],
        }),
      ]),
      dep('embed', [svc({ name: 'e', modelPath: '/m/e.gguf', volumes: ['/srv/e:/m'] })]),
    ]);
    assert.deepEqual(modelFiles(d), [
      { service: 'chat/llm', hostPath: '/srv/models/q.gguf', sha256: 'abc' },
      { service: 'embed/e', hostPath: '/srv/e/e.gguf', sha256: '' },
    ]);
  });

  test('empty modelPath is skipped, and a modelPath outside every volume too', () => {
    const d = one(
      svc({ name: 'a', modelPath: '', volumes: ['/srv:/models'] }),
      svc({ name: 'b', modelPath: '/baked/in/image.gguf', volumes: ['/srv:/models'] }),
    );
    assert.deepEqual(modelFiles(d), []);
  });

  test('no deployments → none', () => {
    assert.deepEqual(modelFiles(desired([])), []);
  });
});

interface Case {
  name: string;
  desired: DesiredState;
  offer?: Partial<NodeOffer>;
  files?: Record<string, FileFacts>;
  /** Exact names of the failing checks, in order. */
  failing: string[];
  /** Substring of the first failing check's message. */
  message?: string | RegExp;
  /** Check names that must be present (passing or failing). */
  present?: string[];
  /** Check names that must not be present. */
  absent?: string[];
}

const MODEL = { modelPath: '/models/q.gguf', volumes: ['/srv/models:/models:ro'] };
const HOST = '/srv/models/q.gguf';
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

const cases: Case[] = [
  {
    name: 'everything fine',
    desired: one(svc({ gpus: 1, gpuMemoryMib: 40_000, ...MODEL, modelSha256: SHA_A })),
    files: { [HOST]: { exists: true, sha256: SHA_A } },
    failing: [],
    present: ['docker', 'nvidia-runtime', 'gpus', 'gpu-memory', 'model-file', 'model-sha256'],
    absent: ['disk'],
  },
  {
    name: 'no GPUs requested: only the docker check',
    desired: one(svc()),
    offer: { gpu: undefined, docker: { ok: true, runtimes: ['runc'], rootDir: '/' } },
    failing: [],
    present: ['docker'],
    absent: ['nvidia-runtime', 'gpus', 'gpu-memory', 'model-file', 'model-sha256', 'disk'],
  },
  {
    name: 'docker unreachable',
    desired: one(svc()),
    offer: { docker: { ok: false, error: 'connect ENOENT /var/run/docker.sock' } },
    failing: ['docker'],
    message: 'Docker unreachable: connect ENOENT /var/run/docker.sock',
  },
  {
    name: 'docker unreachable with GPUs requested: no runtimes known either',
    desired: one(svc({ gpus: 1 })),
    offer: { docker: { ok: false, error: 'boom' } },
    failing: ['docker', 'nvidia-runtime'],
    message: 'Docker unreachable: boom',
  },
  {
    name: 'gpus requested, no nvidia runtime',
    desired: one(svc({ gpus: 1 })),
    offer: { docker: { ok: true, runtimes: ['runc', 'io.containerd.runc.v2'], rootDir: '/' } },
    failing: ['nvidia-runtime'],
    message: /no nvidia runtime \(runtimes: runc, io\.containerd\.runc\.v2\)/,
  },
  {
    name: 'gpus requested, no runtimes at all',
    desired: one(svc({ gpus: 1 })),
    offer: { docker: { ok: true, runtimes: [], rootDir: '/' } },
    failing: ['nvidia-runtime'],
    message: 'runtimes: none',
  },
  {
    name: 'GPU facts not collected yet',
    desired: one(svc({ gpus: 2 })),
    offer: { gpu: undefined },
    failing: ['gpus'],
    message: 'needs 2 GPU(s); this node has no nvidia-smi',
  },
  {
    name: 'GPU status absent',
    desired: one(svc({ gpus: 1 })),
    offer: { gpu: gpuFacts('absent') },
    failing: ['gpus'],
    message: 'needs 1 GPU(s); this node has no nvidia-smi (no GPUs)',
  },
  {
    name: 'GPU status error',
    desired: one(svc({ gpus: 1 })),
    offer: { gpu: gpuFacts('error', [gpu(0)], 'NVML: Driver/library version mismatch') },
    failing: ['gpus'],
    message: 'needs 1 GPU(s); nvidia-smi fails: NVML: Driver/library version mismatch',
  },
  {
    name: 'ok with too few GPUs: replicas × gpus summed across services and deployments',
    desired: desired([
      dep('a', [svc({ name: 'x', gpus: 1, replicas: 2 }), svc({ name: 'web' })]),
      dep('b', [svc({ name: 'y', gpus: 2, replicas: 1 })]),
    ]),
    offer: { gpu: gpuFacts('ok', [gpu(0), gpu(1), gpu(2)]) },
    failing: ['gpus'],
    message: 'needs 4 GPU(s) for a/x, b/y; node has 3',
  },
  {
    name: 'ok with exactly enough GPUs',
    desired: desired([
      dep('a', [svc({ name: 'x', gpus: 1, replicas: 2 })]),
      dep('b', [svc({ name: 'y', gpus: 2 })]),
    ]),
    offer: { gpu: gpuFacts('ok', [gpu(0), gpu(1), gpu(2), gpu(3)]) },
    failing: [],
    present: ['gpus'],
  },
  {
    name: 'stale GPUs still count',
    desired: one(svc({ gpus: 2 })),
    offer: { gpu: gpuFacts('stale', [gpu(0), gpu(1)], 'nvidia-smi timed out') },
    failing: [],
    present: ['gpus'],
  },
  {
    name: 'stale with too few GPUs still fails on count',
    desired: one(svc({ gpus: 3 })),
    offer: { gpu: gpuFacts('stale', [gpu(0), gpu(1)]) },
    failing: ['gpus'],
    message: 'node has 2',
  },
  {
    name: 'gpu_memory_mib: not enough GPUs with that much free',
    desired: one(svc({ gpus: 1, replicas: 2, gpuMemoryMib: 40_000 })),
    offer: { gpu: gpuFacts('ok', [gpu(0, 70_000), gpu(1, 30_000), { ...gpu(2), memoryFreeMib: undefined }]) },
    failing: ['gpu-memory'],
    message: 'needs 2 GPU(s) with 40000 MiB free; 1 of 3 still have it',
  },
  {
    name: 'gpu_memory_mib: two services cannot both count the one roomy GPU',
    desired: desired([
      dep('d', [
        svc({ name: 'a', gpus: 1, gpuMemoryMib: 40_000 }),
        svc({ name: 'b', gpus: 1, gpuMemoryMib: 30_000 }),
      ]),
    ]),
    offer: { gpu: gpuFacts('ok', [gpu(0, 70_000), gpu(1, 10_000)]) },
    failing: ['gpu-memory'],
    message: 'needs 1 GPU(s) with 30000 MiB free; 0 of 2 still have it',
  },
  {
    name: 'gpu_memory_mib: memory our own replica holds (a redeploy frees it) counts as free',
    desired: one(svc({ gpus: 1, gpuMemoryMib: 20_000 })),
    offer: { gpu: gpuFacts('ok', [gpu(0, 4_000)]), reclaimableMib: new Map([['GPU-0', 20_000]]) },
    failing: [],
    present: ['gpu-memory'],
  },
  {
    name: 'gpu_memory_mib: without it the same GPU is too full',
    desired: one(svc({ gpus: 1, gpuMemoryMib: 20_000 })),
    offer: { gpu: gpuFacts('ok', [gpu(0, 4_000)]) },
    failing: ['gpu-memory'],
    message: '0 of 1 still have it',
  },
  {
    name: 'gpu_memory_mib: exactly the amount free is enough',
    desired: one(svc({ gpus: 2, gpuMemoryMib: 40_000 })),
    offer: { gpu: gpuFacts('ok', [gpu(0, 40_000), gpu(1, 40_000)]) },
    failing: [],
    present: ['gpu-memory'],
  },
  {
    name: 'gpu_memory_mib with GPUs absent: gpus and gpu-memory both fail',
    desired: one(svc({ gpus: 1, gpuMemoryMib: 1 })),
    offer: { gpu: gpuFacts('absent') },
    failing: ['gpus', 'gpu-memory'],
    message: 'no nvidia-smi',
  },
  {
    name: 'model file missing',
    desired: one(svc(MODEL)),
    files: { [HOST]: { exists: false } },
    failing: ['model-file'],
    message: `model file ${HOST} not found`,
  },
  {
    name: 'model file not probed at all counts as missing',
    desired: one(svc(MODEL)),
    files: {},
    failing: ['model-file'],
    message: `model file ${HOST} not found`,
  },
  {
    name: 'model file missing carries the probe error',
    desired: one(svc(MODEL)),
    files: { [HOST]: { exists: false, error: 'EACCES' } },
    failing: ['model-file'],
    message: `model file ${HOST} not found (EACCES)`,
  },
  {
    name: 'missing model file with a sha: no sha check',
    desired: one(svc({ ...MODEL, modelSha256: SHA_A })),
    files: { [HOST]: { exists: false } },
    failing: ['model-file'],
    absent: ['model-sha256'],
  },
  {
    name: 'model file present, no sha → no sha check',
    desired: one(svc(MODEL)),
    files: { [HOST]: { exists: true } },
    failing: [],
    present: ['model-file'],
    absent: ['model-sha256'],
  },
  {
    name: 'sha256 mismatch: message has both hashes',
    desired: one(svc({ ...MODEL, modelSha256: SHA_A })),
    files: { [HOST]: { exists: true, sha256: SHA_B } },
    failing: ['model-sha256'],
    message: `sha256 of ${HOST} is ${SHA_B}, playbook expects ${SHA_A}`,
  },
  {
    name: 'sha256 unknown counts as a failure',
    desired: one(svc({ ...MODEL, modelSha256: SHA_A })),
    files: { [HOST]: { exists: true } },
    failing: ['model-sha256'],
    message: 'not known yet: not computed',
  },
  {
    name: 'sha256 still being computed (check mode) says so',
    desired: one(svc({ ...MODEL, modelSha256: SHA_A })),
    files: { [HOST]: { exists: true, error: 'still hashing the file; try again shortly' } },
    failing: ['model-sha256'],
    message: 'not known yet: still hashing',
  },
  {
    name: 'sha256 match',
    desired: one(svc({ ...MODEL, modelSha256: SHA_A })),
    files: { [HOST]: { exists: true, sha256: SHA_A } },
    failing: [],
    present: ['model-file', 'model-sha256'],
  },
  {
    name: 'disk: image present → no disk check even when low',
    desired: one(svc()),
    offer: { dockerFreeBytes: 1 },
    failing: [],
    absent: ['disk'],
  },
  {
    name: 'disk: image missing but free bytes unknown → no disk check',
    desired: one(svc()),
    offer: { imagesPresent: new Set(), dockerFreeBytes: undefined },
    failing: [],
    absent: ['disk'],
  },
  {
    name: 'disk: image missing, below minFreeDiskBytes',
    desired: one(svc({ name: 'a', image: 'img:2' }), svc({ name: 'b', image: 'img:2' }), svc({ name: 'c' })),
    offer: { dockerFreeBytes: 5 * GiB },
    failing: ['disk'],
    message: '5.0 GiB free for Docker data; pulling img:2 needs at least 10.0 GiB',
  },
  {
    name: 'disk: image missing, exactly minFreeDiskBytes free',
    desired: one(svc({ image: 'img:2' })),
    offer: { dockerFreeBytes: 10 * GiB },
    failing: [],
    present: ['disk'],
  },
  {
    name: 'disk: zero free bytes is known, not unknown',
    desired: one(svc({ image: 'img:2' })),
    offer: { dockerFreeBytes: 0 },
    failing: ['disk'],
    message: '0.0 GiB free',
  },
];

describe('evaluate', () => {
  for (const c of cases) {
    test(c.name, () => {
      const r = evaluate(c.desired, offer(c.offer), new Map(Object.entries(c.files ?? {})), OPTS);
      const failing = r.checks.filter((x) => !x.ok);
      assert.deepEqual(
        failing.map((x) => x.name),
        c.failing,
        JSON.stringify(r.checks, null, 1),
      );
      assert.equal(r.ok, c.failing.length === 0);
      if (c.message !== undefined) {
        const msg = failing[0]?.message ?? '';
        if (typeof c.message === 'string') assert.ok(msg.includes(c.message), `${msg} lacks ${c.message}`);
        else assert.match(msg, c.message);
      }
      const names = r.checks.map((x) => x.name);
      for (const n of c.present ?? []) assert.ok(names.includes(n), `${n} missing in ${names}`);
      for (const n of c.absent ?? []) assert.ok(!names.includes(n), `${n} unexpected in ${names}`);
      assert.equal(r.desiredVersion, c.desired.version);
      assert.equal(r.checkedAtMs, OPTS.now);
    });
  }

  test('desiredVersion equals desired.version', () => {
    const r = evaluate(desired([dep('a', [svc()])], 'sha-123456'), offer(), new Map(), OPTS);
    assert.equal(r.desiredVersion, 'sha-123456');
    assert.equal(r.ok, true);
  });

  test('model and gpu-memory checks name their service', () => {
    const d = desired([dep('chat', [svc({ name: 'llm', gpus: 1, gpuMemoryMib: 99_999, ...MODEL })])]);
    const r = evaluate(d, offer(), new Map([[HOST, { exists: false }]]), OPTS);
    const byName = Object.fromEntries(r.checks.map((x) => [x.name, x]));
    assert.equal(byName['gpu-memory']?.service, 'chat/llm');
    assert.equal(byName['model-file']?.service, 'chat/llm');
    assert.equal(byName.docker?.service, '');
    assert.deepEqual(
      r.checks.filter((x) => !x.ok).map((x) => x.name),
      ['gpu-memory', 'model-file'],
    );
  });

  test('an empty desired state passes', () => {
    const r = evaluate(desired([]), offer({ dockerFreeBytes: 0 }), new Map(), OPTS);
    assert.equal(r.ok, true);
    assert.deepEqual(
      r.checks.map((x) => x.name),
      ['docker'],
    );
  });
});
