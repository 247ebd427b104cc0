import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  classifyFailure,
  decodeThrottleReasons,
  GPU_QUERY_FIELDS,
  type GpuSample,
  parseComputeApps,
  parseInvalidField,
  parseList,
  parseQueryGpu,
  parseVersion,
} from '../../../../agent/src/gpu/parse.js';
import { captureFiles, capturePath, FAKE_NVIDIA_SMI_DIR, readSections } from './captures.js';

const UUID0 = 'GPU-00000000-0000-0000-0000-000000000000';

interface Expected {
  driver: string;
  cuda: string;
  name: string;
  memoryTotalMiB: number;
  computeCap: string;
  migMode: 'enabled' | 'disabled' | null;
  eccUncorrected: number | null;
  retiredPagesPending: boolean | null;
  busId: string;
  mig: string[];
  idle: Partial<GpuSample>;
  load: Partial<GpuSample>;
  processes: { idle: number; load: number };
}

/** What each capture says, read off the raw text by hand. */
const EXPECTED: Record<string, Expected> = {
  'linux-x86_64__nvidia-geforce-rtx-2080-super__595.71.05.txt': {
    driver: '595.71.05',
    cuda: '13.2',
    name: 'NVIDIA GeForce RTX 2080 SUPER',
    memoryTotalMiB: 8192,
    computeCap: '7.5',
    migMode: null,
    eccUncorrected: null,
    retiredPagesPending: null,
    busId: '00000000:0C:00.0',
    mig: [],
    idle: {
      memoryUsedMiB: 214,
      powerDrawW: 39.32,
      fanSpeedPct: 38,
      temperatureC: 40,
      pstate: 'P8',
      throttleReasonsMask: 4,
      throttleReasons: ['sw_power_cap'],
    },
    load: { memoryUsedMiB: 819, powerDrawW: 111.5, utilizationGpuPct: 8, pstate: 'P2', throttleReasons: [] },
    processes: { idle: 0, load: 2 },
  },
  'linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt': {
    driver: '590.48.01',
    cuda: '13.1',
    name: 'NVIDIA H100 80GB HBM3',
    memoryTotalMiB: 81559,
    computeCap: '9.0',
    migMode: 'disabled',
    eccUncorrected: 0,
    retiredPagesPending: false,
    busId: '00000000:00:09.0',
    mig: [],
    idle: { memoryUsedMiB: 0, powerDrawW: 69.85, fanSpeedPct: null, throttleReasons: ['gpu_idle'] },
    load: { memoryUsedMiB: 19818, powerDrawW: 631.95, utilizationGpuPct: 100, temperatureC: 59 },
    processes: { idle: 0, load: 3 },
  },
  'linux-x86_64__nvidia-h100-mig__590.48.01.txt': {
    driver: '590.48.01',
    cuda: '13.1',
    name: 'NVIDIA H100 80GB HBM3',
    memoryTotalMiB: 81559,
    computeCap: '9.0',
    migMode: 'enabled',
    eccUncorrected: 0,
    retiredPagesPending: null,
    busId: '00000000:00:09.0',
    mig: ['3g.40gb', '2g.20gb', '1g.10gb', '1g.10gb'],
    // In MIG mode the whole-GPU utilization is not reported.
    idle: { memoryUsedMiB: 59, utilizationGpuPct: null, utilizationMemoryPct: null, powerDrawW: 71.15 },
    load: { memoryUsedMiB: 11125, utilizationGpuPct: null, powerDrawW: 433.78 },
    processes: { idle: 0, load: 3 },
  },
  'linux-x86_64__nvidia-l40s__595.80.txt': {
    driver: '595.80',
    cuda: '13.2',
    name: 'NVIDIA L40S',
    memoryTotalMiB: 46068,
    computeCap: '8.9',
    migMode: null,
    eccUncorrected: 0,
    retiredPagesPending: false,
    busId: '00000000:01:00.0',
    mig: [],
    idle: { memoryUsedMiB: 0, powerDrawW: 144.97, powerLimitW: 350, fanSpeedPct: null },
    load: { memoryUsedMiB: 1235, powerDrawW: 110.23, temperatureC: 54 },
    processes: { idle: 0, load: 2 },
  },
};

/** The capture's full `--query-gpu` CSV (header with units) and the field names it asked for. */
function fullCsv(sections: Map<string, string>, phase: 'idle' | 'load') {
  const csv = sections.get(`${phase} :: query-gpu`);
  assert.ok(csv, `${phase} query-gpu section`);
  const fields = csv
    .split('\n')[0]!
    .split(', ')
    .map((h) => h.replace(/ \[.*\]$/, ''));
  return { csv, fields };
}

/** What the agent really parses: the fake answering fleet's own query, noheader and nounits. */
function fleetQuery(file: string, phase: 'idle' | 'load') {
  return execFileSync(
    join(FAKE_NVIDIA_SMI_DIR, 'nvidia-smi'),
    [`--query-gpu=${GPU_QUERY_FIELDS.join(',')}`, '--format=csv,noheader,nounits'],
    {
      encoding: 'utf8',
      env: {
        ...process.env,
        FAKE_NVIDIA_SMI_CAPTURE: capturePath(file),
        FAKE_NVIDIA_SMI_LOAD: phase === 'load' ? 'loaded' : 'idle',
      },
    },
  );
}

describe('captures', () => {
  test('every capture has an expectation row (and the reverse)', () => {
    assert.deepEqual(captureFiles(), Object.keys(EXPECTED).sort());
  });

  for (const file of captureFiles()) {
    const want = EXPECTED[file]!;
    const sections = readSections(file);

    describe(file, () => {
      for (const phase of ['idle', 'load'] as const) {
        if (!sections.has(`${phase} :: query-gpu`)) continue;

        test(`${phase}: full query-gpu CSV (header, units) parses`, () => {
          const { csv, fields } = fullCsv(sections, phase);
          const gpus = parseQueryGpu(csv, fields);
          assert.equal(gpus.length, 1);
          const g = gpus[0]!;
          assert.equal(g.index, 0);
          assert.equal(g.uuid, UUID0);
          assert.equal(g.name, want.name);
          assert.equal(g.busId, want.busId);
          assert.equal(g.driverVersion, want.driver);
          assert.equal(g.memoryTotalMiB, want.memoryTotalMiB);
          assert.equal(g.computeCap, want.computeCap);
          assert.equal(g.migMode, want.migMode);
          assert.equal(g.eccUncorrected, want.eccUncorrected);
          assert.equal(g.retiredPagesPending, want.retiredPagesPending);
          assert.equal(g.powerLimitW !== null && g.powerLimitW > 0, true);
          assert.ok(g.pstate?.startsWith('P'));
          assert.equal(g.memoryTotalMiB! >= g.memoryUsedMiB! + g.memoryFreeMiB!, true, 'used+free ≤ total');
          for (const [k, v] of Object.entries(want[phase])) {
            assert.deepEqual(g[k as keyof GpuSample], v, `${phase} ${k}`);
          }
        });

        test(`${phase}: fleet's own query (noheader, nounits) gives the same sample`, () => {
          const { csv, fields } = fullCsv(sections, phase);
          const fromFull = parseQueryGpu(csv, fields);
          const fromFleet = parseQueryGpu(fleetQuery(file, phase), GPU_QUERY_FIELDS);
          assert.deepEqual(fromFleet, fromFull);
        });

        test(`${phase}: compute apps`, () => {
          const text = sections.get(`${phase} :: query-compute-apps`) ?? '';
          // The capture asked for more columns; keep fleet's four (gpu_uuid, pid, process_name, memory).
          const rows = text
            .split('\n')
            .slice(1)
            .map((l) => l.split(', '))
            .map((c) => [c[4], c[5], c[6], c[7]].join(', '))
            .join('\n');
          const apps = parseComputeApps(rows);
          assert.equal(apps.length, want.processes[phase]);
          for (const a of apps) {
            assert.equal(a.gpuUuid, UUID0);
            assert.ok(a.pid > 0);
            assert.ok(a.processName.length > 0);
            assert.ok(a.usedMemoryMiB !== null && a.usedMemoryMiB > 0);
          }
        });

        test(`${phase}: default table header gives driver and CUDA versions`, () => {
          const table = sections.get(`${phase} :: nvidia-smi`);
          assert.ok(table);
          assert.deepEqual(parseVersion(table), { driverVersion: want.driver, cudaVersion: want.cuda });
        });
      }

      test('--version', () => {
        assert.deepEqual(parseVersion(sections.get('capabilities :: version')!), {
          driverVersion: want.driver,
          cudaVersion: want.cuda,
        });
      });

      test('-L: the GPU and its MIG devices', () => {
        const listed = parseList(sections.get('capabilities :: list')!);
        assert.equal(listed.length, 1);
        assert.equal(listed[0]!.name, want.name);
        assert.equal(listed[0]!.uuid, UUID0);
        assert.deepEqual(
          listed[0]!.mig.map((m) => m.profile),
          want.mig,
        );
        assert.deepEqual(
          listed[0]!.mig.map((m) => m.index),
          want.mig.map((_, i) => i),
        );
        for (const m of listed[0]!.mig) assert.match(m.uuid, /^MIG-[0-9a-f-]{36}$/);
        assert.equal(new Set(listed[0]!.mig.map((m) => m.uuid)).size, want.mig.length, 'MIG UUIDs distinct');
      });
    });
  }
});

describe('parseQueryGpu on other drivers and odd output', () => {
  const OLD_FIELDS = [
    'index',
    'uuid',
    'name',
    'memory.total',
    'fan.speed',
    'ecc.errors.uncorrected.volatile.total',
    'retired_pages.pending',
    'clocks_throttle_reasons.active',
    'gpu.power.draw.instant',
    'mig.mode.current',
  ];

  test('[Not Supported], [Unknown Error], N/A and empty become null; aliases map; two GPUs', () => {
    const csv = [
      '0, GPU-aaaa, Tesla V100-SXM2-16GB, 16160, [Not Supported], 0, No, 0x0000000000000044, 55.10, [Not Supported]',
      '1, GPU-bbbb, NVIDIA GeForce GTX 1080, 8119, 27, [N/A], N/A, 0x0000000000000101, [Unknown Error], ',
    ].join('\n');
    const [a, b] = parseQueryGpu(csv, OLD_FIELDS);
    assert.equal(a!.fanSpeedPct, null);
    assert.equal(a!.migMode, null);
    assert.equal(a!.retiredPagesPending, false);
    assert.equal(a!.throttleReasonsMask, 0x44);
    assert.deepEqual(a!.throttleReasons, ['sw_power_cap', 'hw_thermal_slowdown']);
    assert.equal(a!.powerDrawW, 55.1, 'gpu.power.draw.instant stands in for power.draw');
    assert.equal(b!.index, 1);
    assert.equal(b!.fanSpeedPct, 27);
    assert.equal(b!.eccUncorrected, null);
    assert.equal(b!.retiredPagesPending, null);
    assert.deepEqual(b!.throttleReasons, ['gpu_idle', 'display_clock_setting']);
    assert.equal(b!.powerDrawW, null);
  });

  test('a pending retirement or remap is true whichever field says so', () => {
    const fields = ['index', 'uuid', 'retired_pages.pending', 'remapped_rows.pending'];
    const pending = (r: string, m: string) =>
      parseQueryGpu(`0, GPU-x, ${r}, ${m}`, fields)[0]!.retiredPagesPending;
    assert.equal(pending('[N/A]', 'Yes'), true);
    assert.equal(pending('Yes', 'No'), true);
    assert.equal(pending('[N/A]', 'No'), false);
    assert.equal(pending('[N/A]', '[N/A]'), null);
  });

  test('a comma in a GPU name does not shift the later columns', () => {
    const [g] = parseQueryGpu('0, GPU-x, Odd, Name, 1024 MiB', ['index', 'uuid', 'name', 'memory.total']);
    assert.equal(g!.name, 'Odd, Name');
    assert.equal(g!.memoryTotalMiB, 1024);
  });

  test('header lines and blank lines are skipped; rows without index and uuid are dropped', () => {
    const csv = 'index, uuid, memory.total [MiB]\n\n0, GPU-x, 10 MiB\r\n[N/A], [N/A], 5\ngarbage\n';
    const gpus = parseQueryGpu(csv, ['index', 'uuid', 'memory.total']);
    assert.deepEqual(
      gpus.map((g) => [g.index, g.uuid, g.memoryTotalMiB]),
      [[0, 'GPU-x', 10]],
    );
  });

  test('never throws, whatever the text and fields', () => {
    const cell = fc.oneof(
      fc.constantFrom(
        '[N/A]',
        'N/A',
        '[Not Supported]',
        'Enabled',
        'Yes',
        '0x1F',
        '81559 MiB',
        '98.00 W',
        '',
      ),
      fc.string(),
    );
    const csv = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc
        .array(fc.array(cell, { maxLength: 25 }), { maxLength: 6 })
        .map((rows) => rows.map((r) => r.join(', ')).join('\n')),
    );
    const fields = fc.oneof(
      fc.constant([...GPU_QUERY_FIELDS]),
      fc.array(fc.oneof(fc.constantFrom(...GPU_QUERY_FIELDS), fc.string()), { maxLength: 25 }),
    );
    fc.assert(
      fc.property(csv, fields, (text, f) => {
        const gpus = parseQueryGpu(text, f);
        for (const g of gpus) {
          assert.equal(typeof g.uuid, 'string');
          assert.ok(Number.isInteger(g.index));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('the other parsers never throw either', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.option(fc.integer()), (text, code) => {
        parseList(text);
        parseVersion(text);
        parseComputeApps(text);
        parseInvalidField(text);
        decodeThrottleReasons(text);
        const f = classifyFailure(code, text);
        assert.ok(['driver', 'unknown', 'other'].includes(f.kind));
        assert.equal(typeof f.message, 'string');
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseList', () => {
  test('older drivers: MIG UUIDs with slashes; lines it does not know are ignored', () => {
    const text = [
      'GPU 0: A100-SXM4-40GB (UUID: GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f)',
      '  MIG 1g.5gb Device 0: (UUID: MIG-GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f/7/0)',
      '  MIG 1g.5gb Device 1: (UUID: MIG-GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f/8/0)',
      'GPU 1: NVIDIA GeForce RTX 3060 (Laptop) (UUID: GPU-11111111-2222-3333-4444-555555555555)',
      'No devices were found',
    ].join('\n');
    assert.deepEqual(parseList(text), [
      {
        index: 0,
        name: 'A100-SXM4-40GB',
        uuid: 'GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f',
        mig: [
          { index: 0, profile: '1g.5gb', uuid: 'MIG-GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f/7/0' },
          { index: 1, profile: '1g.5gb', uuid: 'MIG-GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f/8/0' },
        ],
      },
      {
        index: 1,
        name: 'NVIDIA GeForce RTX 3060 (Laptop)',
        uuid: 'GPU-11111111-2222-3333-4444-555555555555',
        mig: [],
      },
    ]);
  });
});

describe('parseVersion', () => {
  test('an older default table header; N/A CUDA and missing parts are null', () => {
    const old = '| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |';
    assert.deepEqual(parseVersion(old), { driverVersion: '550.54.15', cudaVersion: '12.4' });
    assert.deepEqual(parseVersion('Driver Version: 470.57  CUDA Version: N/A'), {
      driverVersion: '470.57',
      cudaVersion: null,
    });
    assert.deepEqual(parseVersion('NVIDIA-SMI version  : 595.80\nNVML version : 595.80'), {
      driverVersion: null,
      cudaVersion: null,
    });
  });
});

describe('parseComputeApps', () => {
  test('header, units, commas in names, [N/A] memory, bad rows', () => {
    const text = [
      'gpu_uuid, pid, process_name, used_gpu_memory [MiB]',
      'GPU-a, 4242, python3, 1234 MiB',
      'GPU-a, 77, /opt/my, app, [N/A]',
      'GPU-b, notapid, x, 1',
      'short, 1',
    ].join('\n');
    assert.deepEqual(parseComputeApps(text), [
      { gpuUuid: 'GPU-a', pid: 4242, processName: 'python3', usedMemoryMiB: 1234 },
      { gpuUuid: 'GPU-a', pid: 77, processName: '/opt/my, app', usedMemoryMiB: null },
    ]);
  });
});

describe('classifyFailure', () => {
  const cases: [string, number | null, string, ReturnType<typeof classifyFailure>][] = [
    [
      'driver not loaded',
      9,
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n",
      {
        kind: 'driver',
        message:
          "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
      },
    ],
    [
      'GPU handle unknown error',
      15,
      'Unable to determine the device handle for GPU0000:01:00.0: Unknown Error\n',
      {
        kind: 'unknown',
        message: 'Unable to determine the device handle for GPU0000:01:00.0: Unknown Error',
      },
    ],
    ['no devices', 6, '\nNo devices were found\n', { kind: 'other', message: 'No devices were found' }],
    ['silent failure', 3, '', { kind: 'other', message: 'nvidia-smi exited with code 3' }],
  ];
  for (const [name, code, out, want] of cases) {
    test(name, () => assert.deepEqual(classifyFailure(code, out), want));
  }

  test('invalid field names are picked out', () => {
    assert.equal(parseInvalidField('Field "kmd_version" is not a valid field to query.\n\n'), 'kmd_version');
    assert.equal(parseInvalidField('something else'), null);
  });
});
