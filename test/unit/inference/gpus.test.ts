import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { GpuProbe, parseGpuCsv } from '../../../inference/src/gpus.js';

test('parses nvidia-smi CSV rows; [N/A] and [Not Supported] become null', () => {
  const gpus = parseGpuCsv(
    '0, GPU-a1b2, NVIDIA H100 80GB HBM3, 81559, 1, 0, 31\n1, GPU-c3d4, NVIDIA GeForce RTX 2080 SUPER, 8192, [N/A], [Not Supported], 45\n',
  );
  assert.equal(gpus.length, 2);
  assert.deepEqual(gpus[0], {
    index: 0,
    uuid: 'GPU-a1b2',
    name: 'NVIDIA H100 80GB HBM3',
    memoryTotalMiB: 81559,
    memoryUsedMiB: 1,
    utilizationPercent: 0,
    temperatureC: 31,
  });
  assert.equal(gpus[1]!.memoryUsedMiB, null);
  assert.equal(gpus[1]!.utilizationPercent, null);
});

function fakeSmi(script: string) {
  const dir = mkdtempSync(join(tmpdir(), 'smi-'));
  const bin = join(dir, 'nvidia-smi');
  writeFileSync(bin, `#!/bin/sh\n${script}\n`);
  chmodSync(bin, 0o755);
  return bin;
}

test('absent nvidia-smi → no GPUs', async () => {
  const r = await new GpuProbe('/nonexistent/nvidia-smi').read();
  assert.deepEqual(r.gpus, []);
  assert.equal(r.error, undefined);
});

test('a hanging nvidia-smi is killed after the bound and reported, not waited on', async () => {
  const probe = new GpuProbe(fakeSmi('sleep 30'), 300);
  const t0 = Date.now();
  const r = await probe.read();
  assert.ok(Date.now() - t0 < 2000, 'bounded');
  assert.deepEqual(r.gpus, []);
  assert.match(r.error ?? '', /nvidia-smi/);
});

test('a driver error is reported with its message', async () => {
  const probe = new GpuProbe(
    fakeSmi(
      'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver" >&2; exit 9',
    ),
  );
  const r = await probe.read();
  assert.deepEqual(r.gpus, []);
  assert.match(r.error ?? '', /nvidia-smi/);
});
