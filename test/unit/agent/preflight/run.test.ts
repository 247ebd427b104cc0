/**
 * Preflight never reads a host file a refused deployment names: a compromised control plane could
 * otherwise learn whether /etc/shadow exists and its sha256 through `apply --check` or the gate.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileFacts } from '../../../../agent/src/preflight/checks.js';
import type { FileProbe } from '../../../../agent/src/preflight/files.js';
import { runPreflight } from '../../../../agent/src/preflight/run.js';
import { FakeRuntime } from '../../../helpers/fake-runtime.js';
import { dep, desired, IMAGE, svc } from './fixtures.js';

test('model files of a refused deployment are not probed; those of the others are', async () => {
  const probed: string[] = [];
  const files = {
    probe: async (path: string): Promise<FileFacts> => {
      probed.push(path);
      return { exists: true, sha256: 'b'.repeat(64) };
    },
  } as unknown as FileProbe;
  const rt = new FakeRuntime();
  rt.images.add(IMAGE);
  const sha256 = 'a'.repeat(64);
  const state = desired([
    dep('evil', [svc({ volumes: ['/etc:/m:ro'], modelPath: '/m/shadow', modelSha256: sha256 })]),
    dep('good', [svc({ volumes: ['/data/models:/m:ro'], modelPath: '/m/q.gguf', modelSha256: sha256 })]),
  ]);
  const result = await runPreflight(state, {
    runtime: rt,
    facts: async () => undefined,
    files,
    minFreeDiskBytes: 0,
    volumeRoots: ['/data'],
  });
  assert.deepEqual(probed, ['/data/models/q.gguf']);
  assert.ok(!JSON.stringify(result).includes('/etc/shadow'), JSON.stringify(result));
});
