import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DEFAULT_RESTART_POLICY } from '../../../agent/src/health/restart-policy.js';
import { fromSpec } from '../../../agent/src/model.js';
import { ContainerLifecycle } from '../../../agent/src/reconcile/lifecycle.js';
import { MAX_STORED_STREAKS, parseStreaks, RestartHistoryFile } from '../../../agent/src/restart-store.js';
import { serviceSpec } from '../../helpers/service-spec.js';

const root = mkdtempSync(join(tmpdir(), 'fleet-restarts-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `d${n++}`);

const [D] = fromSpec(
  {
    version: 'v1',
    deployments: [
      {
        name: 'web',
        revision: 1,
        revisionHash: 'rh1',
        registryAuth: [],
        secrets: [],
        services: [serviceSpec()],
      },
    ],
  },
  'n1',
);

describe('restart history across agent restarts', () => {
  test('a new agent process goes on counting: restart counts never go backwards', () => {
    const dir = freshDir();
    let now = 10_000;
    const first = new ContainerLifecycle(
      () => now,
      DEFAULT_RESTART_POLICY,
      () => 0.5,
      new RestartHistoryFile(dir),
    );
    assert.equal(first.restarted(D, D!.key, 'c1', 'exited with code 3', now, 3), 1);
    now += 1_000;
    assert.equal(first.restarted(D, D!.key, 'c1', 'exited with code 3', now, 3), 2);
    // SIGKILL: nothing but the file survives. The next process starts from it.
    now += 500;
    const second = new ContainerLifecycle(
      () => now,
      DEFAULT_RESTART_POLICY,
      () => 0.5,
      new RestartHistoryFile(dir),
    );
    const streak = second.streaks([], [D!]).get(D!.key);
    assert.equal(streak?.attempts, 2, 'the streak survived');
    assert.equal(streak?.lastExitCode, 3);
    // Its backoff too: the third restart waits 2 s (minus jitter) after the second, not 0.
    assert.ok((streak?.notBeforeMs ?? 0) > now, 'the crash loop keeps its backoff');
    assert.equal(second.restarted(D, D!.key, 'c1', 'exited with code 3', now + 2_000, 3), 3);
  });

  test('a missing, corrupt or wrongly shaped file is no history, never a crash', () => {
    const dir = freshDir();
    const store = new RestartHistoryFile(dir);
    assert.equal(store.load().size, 0, 'missing');
    store.save(new Map([['k#h', { attempts: 1, lastRestartAtMs: 5, lastReason: 'x', jitter: 0.1 }]]));
    assert.equal(store.load().get('k#h')?.attempts, 1);
    for (const garbage of [
      '\u0000\u00ff garbage',
      '[]',
      '{"k#h":{"attempts":-1,"lastRestartAtMs":1}}',
      'null',
    ]) {
      writeFileSync(store.file, garbage);
      assert.equal(store.load().size, 0, JSON.stringify(garbage));
    }
    assert.throws(() => parseStreaks('{"a":{"attempts":"2","lastRestartAtMs":1}}'), /bad entry a/);
  });

  test('a state folder deleted under the agent is made again; the file is bounded', () => {
    const dir = freshDir();
    const store = new RestartHistoryFile(dir);
    rmSync(dir, { recursive: true, force: true });
    const many = new Map(
      Array.from({ length: MAX_STORED_STREAKS + 5 }, (_, i) => [
        `k${i}#h`,
        { attempts: 1, lastRestartAtMs: i, lastReason: '', jitter: 0 },
      ]),
    );
    store.save(many);
    const kept = JSON.parse(readFileSync(store.file, 'utf8')) as Record<string, unknown>;
    assert.equal(Object.keys(kept).length, MAX_STORED_STREAKS);
    assert.equal(kept['k0#h'], undefined, 'the oldest went first');
    assert.ok(kept[`k${MAX_STORED_STREAKS + 4}#h`]);
  });
});
