import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gpuFactsOf } from '../../../../agent/src/facts/to-proto.js';
import type { GpuState } from '../../../../agent/src/gpu/collector.js';
import type { GpuSample } from '../../../../agent/src/gpu/parse.js';

const A = 'GPU-aaaaaaaa-0000-0000-0000-000000000001';
const B = 'GPU-bbbbbbbb-0000-0000-0000-000000000002';

const sample = (over: Partial<GpuSample> = {}): GpuSample => ({
  index: 0,
  uuid: A,
  name: 'NVIDIA H100 80GB HBM3',
  busId: '00000000:18:00.0',
  driverVersion: '590.48.01',
  memoryTotalMiB: 81_559,
  memoryUsedMiB: 1_000,
  memoryFreeMiB: 80_559,
  utilizationGpuPct: 12,
  utilizationMemoryPct: 3,
  temperatureC: 35,
  powerDrawW: 70.5,
  powerLimitW: 700,
  fanSpeedPct: 30,
  computeCap: '9.0',
  migMode: 'enabled',
  eccUncorrected: 2,
  retiredPagesPending: true,
  throttleReasonsMask: 4,
  throttleReasons: ['sw_power_cap'],
  pstate: 'P0',
  ...over,
});

const nulls: Partial<GpuSample> = {
  busId: null,
  driverVersion: null,
  memoryTotalMiB: null,
  memoryUsedMiB: null,
  memoryFreeMiB: null,
  utilizationGpuPct: null,
  utilizationMemoryPct: null,
  temperatureC: null,
  powerDrawW: null,
  powerLimitW: null,
  fanSpeedPct: null,
  computeCap: null,
  migMode: null,
  eccUncorrected: null,
  retiredPagesPending: null,
  throttleReasonsMask: null,
  throttleReasons: [],
  pstate: null,
};

const state = (over: Partial<GpuState> = {}): GpuState => ({
  status: 'ok',
  gpus: [sample(), sample({ index: 1, uuid: B, ...nulls })],
  mig: [
    {
      gpuIndex: 1,
      gpuUuid: B,
      devices: [{ index: 0, profile: '3g.40gb', uuid: 'MIG-b0' }],
    },
    {
      gpuIndex: 0,
      gpuUuid: A,
      devices: [
        { index: 0, profile: '1g.10gb', uuid: 'MIG-a0' },
        { index: 1, profile: '1g.10gb', uuid: 'MIG-a1' },
      ],
    },
  ],
  cudaVersion: '13.1',
  driverVersion: '590.48.01',
  processes: [
    { gpuUuid: A, pid: 10, processName: 'python3', usedMemoryMiB: 500 },
    { gpuUuid: B, pid: 20, processName: 'llama-server', usedMemoryMiB: null },
  ],
  collectedAtMs: 1_700_000_000_000,
  ...over,
});

describe('gpuFactsOf', () => {
  test('values carry over, in wire names', () => {
    const f = gpuFactsOf(state(), new Map());
    assert.equal(f.status, 'ok');
    assert.equal(f.error, '');
    assert.equal(f.driverVersion, '590.48.01');
    assert.equal(f.cudaVersion, '13.1');
    assert.equal(f.collectedAtMs, 1_700_000_000_000);
    assert.deepEqual(f.gpus[0], {
      index: 0,
      uuid: A,
      name: 'NVIDIA H100 80GB HBM3',
      busId: '00000000:18:00.0',
      memoryTotalMib: 81_559,
      memoryUsedMib: 1_000,
      memoryFreeMib: 80_559,
      utilizationGpuPct: 12,
      utilizationMemoryPct: 3,
      temperatureC: 35,
      powerDrawW: 70.5,
      powerLimitW: 700,
      fanSpeedPct: 30,
      computeCap: '9.0',
      migMode: 'enabled',
      eccUncorrected: 2,
      retiredPagesPending: true,
      throttleReasons: ['sw_power_cap'],
      pstate: 'P0',
      migDevices: [
        { index: 0, profile: '1g.10gb', uuid: 'MIG-a0' },
        { index: 1, profile: '1g.10gb', uuid: 'MIG-a1' },
      ],
    });
  });

  test('nulls become undefined (numbers) or empty strings (text)', () => {
    const g = gpuFactsOf(state(), new Map()).gpus[1]!;
    for (const k of [
      'memoryTotalMib',
      'memoryUsedMib',
      'memoryFreeMib',
      'utilizationGpuPct',
      'utilizationMemoryPct',
      'temperatureC',
      'powerDrawW',
      'powerLimitW',
      'fanSpeedPct',
      'eccUncorrected',
      'retiredPagesPending',
    ] as const) {
      assert.equal(g[k], undefined, k);
    }
    assert.equal(g.busId, '');
    assert.equal(g.computeCap, '');
    assert.equal(g.migMode, '');
    assert.equal(g.pstate, '');
    assert.deepEqual(g.throttleReasons, []);
  });

  test('zero is a value, not a missing one', () => {
    const s = state({
      gpus: [sample({ utilizationGpuPct: 0, eccUncorrected: 0, retiredPagesPending: false })],
    });
    const g = gpuFactsOf(s, new Map()).gpus[0]!;
    assert.equal(g.utilizationGpuPct, 0);
    assert.equal(g.eccUncorrected, 0);
    assert.equal(g.retiredPagesPending, false);
  });

  test('MIG devices go to the GPU with the same UUID, not the same position', () => {
    const f = gpuFactsOf(state(), new Map());
    assert.deepEqual(
      f.gpus.map((g) => [g.uuid, g.migDevices.map((d) => d.uuid)]),
      [
        [A, ['MIG-a0', 'MIG-a1']],
        [B, ['MIG-b0']],
      ],
    );
  });

  test('a GPU without MIG entry gets no devices; MIG devices are copies', () => {
    const s = state({
      mig: [{ gpuIndex: 9, gpuUuid: 'GPU-other', devices: [{ index: 0, profile: 'p', uuid: 'u' }] }],
    });
    const f = gpuFactsOf(s, new Map());
    assert.deepEqual(
      f.gpus.map((g) => g.migDevices),
      [[], []],
    );
    const s2 = state();
    const f2 = gpuFactsOf(s2, new Map());
    f2.gpus[0]!.migDevices[0]!.profile = 'changed';
    assert.equal(s2.mig[1]!.devices[0]!.profile, '1g.10gb');
  });

  test('processes get their container names from the map, or an empty string', () => {
    const f = gpuFactsOf(state(), new Map([[10, 'llm-chat-0']]));
    assert.deepEqual(f.processes, [
      { gpuUuid: A, pid: 10, processName: 'python3', usedMemoryMib: 500, container: 'llm-chat-0' },
      { gpuUuid: B, pid: 20, processName: 'llama-server', usedMemoryMib: undefined, container: '' },
    ]);
  });

  test('error and stale states: error text, absent versions', () => {
    const f = gpuFactsOf(
      state({
        status: 'error',
        error: 'NVIDIA-SMI has failed',
        gpus: [],
        mig: [],
        processes: [],
        driverVersion: null,
        cudaVersion: null,
      }),
      new Map(),
    );
    assert.deepEqual(f, {
      status: 'error',
      error: 'NVIDIA-SMI has failed',
      driverVersion: '',
      cudaVersion: '',
      collectedAtMs: 1_700_000_000_000,
      gpus: [],
      processes: [],
    });
  });
});
