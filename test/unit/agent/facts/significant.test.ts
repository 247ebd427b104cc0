import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { significantChange, THRESHOLDS } from '../../../../agent/src/facts/significant.js';
import type { Gpu, HostFacts } from '../../../../proto/gen/fleet/v1/agent.js';
import { GiB, gpu, hostFacts, proc, UUID_B, withGpu } from './fixtures.js';

/** A copy of the base facts with `edit` applied (the base is never touched). */
const edited = (edit: (f: HostFacts) => void, base = hostFacts()): HostFacts => {
  const f = structuredClone(base);
  edit(f);
  return f;
};

describe('significantChange', () => {
  test('THRESHOLDS are the documented ones', () => {
    assert.deepEqual(THRESHOLDS, {
      memoryFraction: 0.05,
      utilizationPoints: 10,
      temperatureC: 5,
      powerFraction: 0.1,
      hostMemoryFraction: 0.05,
      diskFraction: 0.01,
    });
  });

  test('the first facts always count', () => {
    assert.equal(significantChange(undefined, hostFacts()), true);
    assert.equal(significantChange(undefined, hostFacts({ gpu: undefined })), true);
  });

  test('identical facts (and a new collection time alone) do not count', () => {
    assert.equal(significantChange(hostFacts(), hostFacts()), false);
    const later = hostFacts({ collectedAtMs: 99_999 });
    later.gpu!.collectedAtMs = 99_999;
    assert.equal(significantChange(hostFacts(), later), false);
  });

  // [label, change to GPU 0, significant?]. GPU 0: 80,000 MiB total (5% = 4,000), 700 W limit (10% = 70 W).
  const gpuTable: [string, Partial<Gpu>, boolean][] = [
    ['memory used +3,999 MiB (< 5% of total)', { memoryUsedMib: 13_999 }, false],
    ['memory used -3,999 MiB', { memoryUsedMib: 6_001 }, false],
    ['memory used +4,000 MiB (= 5%)', { memoryUsedMib: 14_000 }, true],
    ['memory used -4,000 MiB', { memoryUsedMib: 6_000 }, true],
    ['memory used becomes unknown', { memoryUsedMib: undefined }, true],
    ['utilization +9 points', { utilizationGpuPct: 59 }, false],
    ['utilization -9 points', { utilizationGpuPct: 41 }, false],
    ['utilization +10 points', { utilizationGpuPct: 60 }, true],
    ['utilization -10 points', { utilizationGpuPct: 40 }, true],
    ['utilization becomes unknown', { utilizationGpuPct: undefined }, true],
    ['temperature +4 °C', { temperatureC: 44 }, false],
    ['temperature -4 °C', { temperatureC: 36 }, false],
    ['temperature +5 °C', { temperatureC: 45 }, true],
    ['temperature -5 °C', { temperatureC: 35 }, true],
    ['power +69 W (< 10% of the limit)', { powerDrawW: 369 }, false],
    ['power -69 W', { powerDrawW: 231 }, false],
    ['power +70 W (= 10% of the limit)', { powerDrawW: 370 }, true],
    ['power -70 W', { powerDrawW: 230 }, true],
    ['memory-controller utilization alone', { utilizationMemoryPct: 90 }, false],
    ['memory free alone', { memoryFreeMib: 1 }, false],
    ['UUID changed', { uuid: 'GPU-cccccccc-0000-0000-0000-000000000003' }, true],
    ['name changed', { name: 'NVIDIA H200' }, true],
    ['MIG mode changed', { migMode: 'enabled' }, true],
    ['pstate changed', { pstate: 'P8' }, true],
    ['ECC uncorrected count +1', { eccUncorrected: 1 }, true],
    ['ECC count becomes unknown', { eccUncorrected: undefined }, true],
    ['retired pages pending', { retiredPagesPending: true }, true],
    ['throttle reason appears', { throttleReasons: ['hw_thermal_slowdown'] }, true],
    [
      'MIG device count changed',
      { migDevices: [{ index: 0, profile: '1g.10gb', uuid: 'MIG-11111111-0000-0000-0000-000000000000' }] },
      true,
    ],
  ];
  for (const [label, over, want] of gpuTable) {
    test(`GPU: ${label} → ${want}`, () => {
      assert.equal(significantChange(hostFacts(), withGpu(hostFacts(), 0, over)), want);
      // Same on the second GPU: every GPU is compared, not just the first.
      assert.equal(significantChange(hostFacts(), withGpu(hostFacts(), 1, over)), want);
    });
  }

  test('a memory move is measured against the total memory: 5% of a 24 GiB GPU is smaller', () => {
    const small = withGpu(hostFacts(), 0, { memoryTotalMib: 24_000, memoryUsedMib: 1_000 });
    assert.equal(significantChange(small, withGpu(small, 0, { memoryUsedMib: 2_199 })), false);
    assert.equal(significantChange(small, withGpu(small, 0, { memoryUsedMib: 2_200 })), true);
  });

  test('throttle reasons compare as an ordered list', () => {
    const a = withGpu(hostFacts(), 0, { throttleReasons: ['sw_power_cap'] });
    assert.equal(significantChange(a, withGpu(a, 0, { throttleReasons: ['sw_power_cap'] })), false);
    assert.equal(significantChange(a, withGpu(a, 0, { throttleReasons: [] })), true);
    assert.equal(
      significantChange(a, withGpu(a, 0, { throttleReasons: ['sw_power_cap', 'hw_slowdown'] })),
      true,
    );
  });

  // [label, edit, significant?]
  const table: [string, (f: HostFacts) => void, boolean][] = [
    [
      'GPU status ok → stale',
      (f) => {
        f.gpu!.status = 'stale';
      },
      true,
    ],
    [
      'GPU status ok → error',
      (f) => {
        f.gpu!.status = 'error';
      },
      true,
    ],
    [
      'GPU error text changed',
      (f) => {
        f.gpu!.error = 'nvidia-smi timed out';
      },
      true,
    ],
    [
      'driver version changed',
      (f) => {
        f.gpu!.driverVersion = '595.80';
      },
      true,
    ],
    ['a GPU added', (f) => void f.gpu!.gpus.push(gpu({ index: 2, uuid: 'GPU-new' })), true],
    ['a GPU removed', (f) => void f.gpu!.gpus.pop(), true],
    [
      'GPU facts appear',
      (f) => {
        f.gpu = undefined;
      },
      true,
    ],
    ['a process started', (f) => void f.gpu!.processes.push(proc({ pid: 999, gpuUuid: UUID_B })), true],
    ['a process ended', (f) => void f.gpu!.processes.pop(), true],
    [
      'a process pid changed',
      (f) => {
        f.gpu!.processes[0]!.pid = 4321;
      },
      true,
    ],
    [
      'a process container changed',
      (f) => {
        f.gpu!.processes[0]!.container = 'other-0';
      },
      true,
    ],
    [
      'a process moved GPU',
      (f) => {
        f.gpu!.processes[0]!.gpuUuid = UUID_B;
      },
      true,
    ],
    [
      'a process memory moved alone',
      (f) => {
        f.gpu!.processes[0]!.usedMemoryMib = 1;
      },
      false,
    ],
    [
      'stale flag set',
      (f) => {
        f.stale = true;
      },
      true,
    ],
    [
      'hostname changed',
      (f) => {
        f.hostname = 'gpu-02';
      },
      true,
    ],
    [
      'kernel changed',
      (f) => {
        f.kernel = '6.1.0-20-amd64';
      },
      true,
    ],
    [
      'docker version changed',
      (f) => {
        f.dockerVersion = '28.0.0';
      },
      true,
    ],
    ['docker runtimes changed', (f) => void f.dockerRuntimes.pop(), true],
    ['an address added', (f) => void f.addresses.push('fd00::5'), true],
    [
      'an address changed',
      (f) => {
        f.addresses[0] = '10.0.0.6';
      },
      true,
    ],
    [
      'CPU cores changed',
      (f) => {
        f.cpuCores = 48;
      },
      true,
    ],
    [
      'memory total changed',
      (f) => {
        f.memoryTotalBytes += GiB;
      },
      true,
    ],
    [
      'a disk role changed',
      (f) => {
        f.disks[1]!.roles = ['docker'];
      },
      true,
    ],
    ['a disk mounted', (f) => void f.disks.push({ ...f.disks[0]!, mount: '/data', roles: ['models'] }), true],
    ['a disk unmounted', (f) => void f.disks.pop(), true],
    // 512 GiB total: 5% = 25.6 GiB
    [
      'host memory available -25 GiB (< 5%)',
      (f) => {
        f.memoryAvailableBytes -= 25 * GiB;
      },
      false,
    ],
    [
      'host memory available +25 GiB',
      (f) => {
        f.memoryAvailableBytes += 25 * GiB;
      },
      false,
    ],
    [
      'host memory available -26 GiB (≥ 5%)',
      (f) => {
        f.memoryAvailableBytes -= 26 * GiB;
      },
      true,
    ],
    // root disk 100 GiB: 1% = 1 GiB
    [
      'root disk available -0.99 GiB (< 1%)',
      (f) => {
        f.disks[0]!.availableBytes -= 0.99 * GiB;
      },
      false,
    ],
    [
      'root disk available -1 GiB (= 1%)',
      (f) => {
        f.disks[0]!.availableBytes -= GiB;
      },
      true,
    ],
    [
      'root disk available +1 GiB',
      (f) => {
        f.disks[0]!.availableBytes += GiB;
      },
      true,
    ],
    // docker disk 1000 GiB: 1% = 10 GiB
    [
      'docker disk available -9 GiB',
      (f) => {
        f.disks[1]!.availableBytes -= 9 * GiB;
      },
      false,
    ],
    [
      'docker disk available -10 GiB',
      (f) => {
        f.disks[1]!.availableBytes -= 10 * GiB;
      },
      true,
    ],
  ];
  for (const [label, edit, want] of table) {
    test(`${label} → ${want}`, () => {
      assert.equal(significantChange(hostFacts(), edited(edit)), want);
    });
  }

  test('the stale flag counts both ways', () => {
    const stale = hostFacts({ stale: true });
    assert.equal(significantChange(hostFacts(), stale), true);
    assert.equal(significantChange(stale, hostFacts()), true);
  });

  test('GPU facts disappearing counts', () => {
    assert.equal(significantChange(hostFacts(), hostFacts({ gpu: undefined })), true);
  });

  test('two hosts without GPU facts and the same values: no change', () => {
    assert.equal(significantChange(hostFacts({ gpu: undefined }), hostFacts({ gpu: undefined })), false);
  });

  test('without GPU facts, host changes (hostname, stale, disks) still count', {}, () => {
    const base = hostFacts({ gpu: undefined });
    assert.equal(significantChange(base, { ...base, hostname: 'gpu-02' }), true);
    assert.equal(significantChange(base, { ...base, stale: true }), true);
    assert.equal(
      significantChange(
        base,
        edited((f) => void f.disks.pop(), base),
      ),
      true,
    );
  });

  test('identical facts with an unknown (0) memory total or disk size do not count', {}, () => {
    const noMem = hostFacts({ memoryTotalBytes: 0, memoryAvailableBytes: 0 });
    assert.equal(significantChange(noMem, structuredClone(noMem)), false);
    const noSize = edited((f) => {
      f.disks[0]!.sizeBytes = 0;
    });
    assert.equal(significantChange(noSize, structuredClone(noSize)), false);
  });

  test('property: a deep copy never counts; a gauge moved by at least its threshold always does', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: -100, max: 100 }),
        fc.integer({ min: 0, max: 1 }),
        (util, delta, i) => {
          const base = withGpu(hostFacts(), i, { utilizationGpuPct: util });
          assert.equal(significantChange(base, structuredClone(base)), false);
          const next = withGpu(base, i, { utilizationGpuPct: util + delta });
          assert.equal(significantChange(base, next), Math.abs(delta) >= THRESHOLDS.utilizationPoints);
        },
      ),
    );
  });

  test('UUID identity is positional: swapping two GPUs counts', () => {
    const swapped = edited((f) => void f.gpu!.gpus.reverse());
    assert.equal(significantChange(hostFacts(), swapped), true);
  });
});
