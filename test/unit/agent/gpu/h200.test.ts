/**
 * A real NVIDIA H200 (driver 580.159.04, CUDA 13.0) through fleet's own nvidia-smi parsers: the capture in
 * test/fixtures/nvidia-smi/h200-580.159.04/ was taken on the device machine by `scripts/gpu-check.sh smi`
 * with the exact commands the agent and the inference server run, and agent-collect.json beside it is what
 * the agent's GpuCollector reported there over the real nvidia-smi. See docs/gpu-check.md.
 *
 * The capture sits in a folder of its own: parse.test.ts requires an expectation row for every top-level
 * capture, and its rows check the exporter's sections, which this capture does not have.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { ExecFileRunner, GpuCollector, type GpuState } from '../../../../agent/src/gpu/collector.js';
import {
  GPU_QUERY_FIELDS,
  type GpuSample,
  parseComputeApps,
  parseList,
  parseQueryGpu,
  parseVersion,
} from '../../../../agent/src/gpu/parse.js';
import { parseGpuCsv } from '../../../../inference/src/gpus.js';
import { CAPTURES_DIR, capturePath, FAKE_NVIDIA_SMI_DIR, readSections } from './captures.js';

const DIR = 'h200-580.159.04';
const CAPTURE = `${DIR}/linux-x86_64__nvidia-h200__580.159.04.txt`;
const UUID_FORMAT = /^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DRIVER = '580.159.04';
const CUDA = '13.0';

const sections = readSections(CAPTURE);
const section = (key: string) => {
  const s = sections.get(key);
  assert.ok(s !== undefined, `capture section "${key}"`);
  return s;
};

/** The sample's stable facts (not the live readings: power, temperature, clocks). */
type Row = [label: string, get: (g: GpuSample) => unknown, want: (v: unknown) => void];
const eq =
  (want: unknown) =>
  (v: unknown): void =>
    assert.deepEqual(v, want);
const between =
  (lo: number, hi: number) =>
  (v: unknown): void => {
    assert.equal(typeof v, 'number');
    assert.ok((v as number) >= lo && (v as number) <= hi, `${v} in ${lo}..${hi}`);
  };

const ROWS: Row[] = [
  ['index', (g) => g.index, eq(0)],
  ['uuid has the GPU- UUID format', (g) => UUID_FORMAT.test(g.uuid), eq(true)],
  ['name contains H200', (g) => /H200/.test(g.name), eq(true)],
  ['name', (g) => g.name, eq('NVIDIA H200')],
  ['PCI bus id', (g) => g.busId, eq('00000000:00:06.0')],
  ['driver version', (g) => g.driverVersion, eq(DRIVER)],
  ['memory total (MiB)', (g) => g.memoryTotalMiB, eq(143771)],
  ['memory total ≈ 140.4 GiB', (g) => g.memoryTotalMiB, between(143_000, 144_500)],
  ['memory used (MiB), idle', (g) => g.memoryUsedMiB, eq(0)],
  // The driver reserves 616 MiB (-q: FB Memory Usage, Reserved), so used + free < total.
  ['memory free (MiB), idle', (g) => g.memoryFreeMiB, eq(143156)],
  ['utilization gpu %, idle', (g) => g.utilizationGpuPct, eq(0)],
  ['utilization memory %, idle', (g) => g.utilizationMemoryPct, eq(0)],
  ['temperature (C)', (g) => g.temperatureC, between(20, 90)],
  ['power draw (W), idle', (g) => g.powerDrawW, between(30, 200)],
  ['power limit (W)', (g) => g.powerLimitW, eq(700)],
  ['fan speed: none on an SXM board ([N/A] → null)', (g) => g.fanSpeedPct, eq(null)],
  ['compute capability', (g) => g.computeCap, eq('9.0')],
  ['MIG mode', (g) => g.migMode, eq('disabled')],
  ['uncorrected ECC errors', (g) => g.eccUncorrected, eq(0)],
  [
    'pending retirement/remap (retired_pages [N/A], remapped_rows No)',
    (g) => g.retiredPagesPending,
    eq(false),
  ],
  ['clocks event mask: idle only', (g) => g.throttleReasonsMask, eq(1)],
  ['clocks event reasons', (g) => g.throttleReasons, eq(['gpu_idle'])],
  ['performance state', (g) => g.pstate, eq('P0')],
];

function checkRows(g: GpuSample) {
  for (const [label, get, want] of ROWS) {
    try {
      want(get(g));
    } catch (err) {
      assert.fail(`${label}: ${(err as Error).message}`);
    }
  }
}

describe('NVIDIA H200, driver 580.159.04: real nvidia-smi output through the agent parsers', () => {
  test('the capture holds every command, and each exited 0', () => {
    const raw = readFileSync(capturePath(CAPTURE), 'utf8');
    const exits = [...raw.matchAll(/^# exit: (\d+), \d+ ms$/gm)].map((m) => Number(m[1]));
    assert.ok(exits.length >= 11, `${exits.length} commands`);
    assert.deepEqual(
      exits.filter((c) => c !== 0),
      [],
    );
    for (const key of [
      'capabilities :: version',
      'capabilities :: list',
      'capabilities :: help-query-gpu',
      'capabilities :: help-query-compute-apps',
      'idle :: nvidia-smi',
      'idle :: query-gpu',
      'idle :: fleet-query-gpu',
      'idle :: query-compute-apps',
      'idle :: fleet-query-compute-apps',
      'idle :: inference-query-gpu',
      'idle :: query',
    ]) {
      section(key);
    }
  });

  test('--version: driver and CUDA versions', () => {
    assert.deepEqual(parseVersion(section('capabilities :: version')), {
      driverVersion: DRIVER,
      cudaVersion: CUDA,
    });
  });

  test('the default table header gives the same versions (the fallback for drivers without --version)', () => {
    assert.deepEqual(parseVersion(section('idle :: nvidia-smi')), {
      driverVersion: DRIVER,
      cudaVersion: CUDA,
    });
  });

  test('-L: one H200, a GPU- UUID, no MIG devices', () => {
    const listed = parseList(section('capabilities :: list'));
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.index, 0);
    assert.equal(listed[0]!.name, 'NVIDIA H200');
    assert.match(listed[0]!.uuid, UUID_FORMAT);
    assert.deepEqual(listed[0]!.mig, []);
  });

  test("the agent's exact poll command (csv,noheader,nounits), field by field", () => {
    const gpus = parseQueryGpu(section('idle :: fleet-query-gpu'), GPU_QUERY_FIELDS);
    assert.equal(gpus.length, 1);
    checkRows(gpus[0]!);
  });

  test('the same fields with header and units parse to the same facts', () => {
    const csv = section('idle :: query-gpu');
    const header = csv
      .split('\n')[0]!
      .split(', ')
      .map((h) => h.replace(/ \[.*\]$/, ''));
    assert.deepEqual(header, [...GPU_QUERY_FIELDS], 'driver 580 accepts every field fleet asks for, by name');
    const gpus = parseQueryGpu(csv, header);
    assert.equal(gpus.length, 1);
    checkRows(gpus[0]!);
    const noUnits = parseQueryGpu(section('idle :: fleet-query-gpu'), GPU_QUERY_FIELDS)[0]!;
    // Two separate invocations: only the live readings may differ.
    const stable = ({ powerDrawW: _p, temperatureC: _t, ...rest }: GpuSample) => rest;
    assert.deepEqual(stable(gpus[0]!), stable(noUnits));
  });

  test('compute apps: no process on the idle GPU, header-only and empty outputs both parse to []', () => {
    assert.equal(section('idle :: query-compute-apps'), 'gpu_uuid, pid, process_name, used_gpu_memory [MiB]');
    assert.deepEqual(parseComputeApps(section('idle :: query-compute-apps')), []);
    assert.deepEqual(parseComputeApps(section('idle :: fleet-query-compute-apps')), []);
  });

  test("the inference server's /health probe (inference/src/gpus.ts) parses the same GPU", () => {
    const [g, ...rest] = parseGpuCsv(section('idle :: inference-query-gpu'));
    assert.deepEqual(rest, []);
    assert.ok(g);
    assert.equal(g.index, 0);
    assert.match(g.uuid, UUID_FORMAT);
    assert.equal(g.name, 'NVIDIA H200');
    assert.equal(g.memoryTotalMiB, 143771);
    assert.equal(g.memoryUsedMiB, 0);
    assert.equal(g.utilizationPercent, 0);
    assert.equal(typeof g.temperatureC, 'number');
  });

  test('nvidia-smi -q agrees with what the parsers read', () => {
    const q = section('idle :: query');
    const field = (name: string) => new RegExp(`^\\s*${name}\\s+:\\s*(.*?)\\s*$`, 'm').exec(q)?.[1];
    const g = parseQueryGpu(section('idle :: fleet-query-gpu'), GPU_QUERY_FIELDS)[0]!;
    assert.equal(field('Product Name'), g.name);
    assert.equal(field('Product Architecture'), 'Hopper');
    assert.equal(field('Driver Version'), g.driverVersion);
    assert.equal(field('CUDA Version'), CUDA);
    assert.equal(field('GPU UUID'), g.uuid);
    assert.equal(field('Bus Id'), g.busId);
    assert.equal(field('Total'), `${g.memoryTotalMiB} MiB`, 'first "Total" is FB Memory Usage');
    assert.equal(field('Reserved'), '616 MiB');
    const unaccounted = g.memoryTotalMiB! - 616 - g.memoryFreeMiB! - g.memoryUsedMiB!;
    assert.ok(
      Math.abs(unaccounted) <= 1,
      `total = reserved + used + free, to a MiB of rounding (${unaccounted})`,
    );
    assert.equal(field('Current'), 'Disabled', 'first "Current" is MIG Mode');
    assert.equal(field('Performance State'), g.pstate);
  });

  test('GpuCollector over the fake nvidia-smi replaying this capture reports what it reported on the H200', async () => {
    const onDevice = JSON.parse(readFileSync(join(CAPTURES_DIR, DIR, 'agent-collect.json'), 'utf8')) as {
      node: string;
      queryFields: string[];
      state: GpuState;
      runs: { status: string; commands: { args: string; code: number | null }[] }[];
    };
    const runner = new ExecFileRunner({
      PATH: [FAKE_NVIDIA_SMI_DIR, dirname(process.execPath)].join(delimiter),
      FAKE_NVIDIA_SMI_CAPTURE: capturePath(CAPTURE),
    });
    const replayed = await new GpuCollector({ runner, timeoutMs: 10_000 }).collect();
    const facts = (s: GpuState) => ({
      status: s.status,
      driverVersion: s.driverVersion,
      cudaVersion: s.cudaVersion,
      mig: s.mig,
      processes: s.processes,
      gpus: s.gpus.map(({ powerDrawW: _p, temperatureC: _t, ...rest }) => rest),
    });
    assert.deepEqual(facts(replayed), facts(onDevice.state));
    assert.equal(onDevice.state.status, 'ok');
    assert.equal(onDevice.state.cudaVersion, CUDA);
    checkRows(onDevice.state.gpus[0]!);
    assert.deepEqual(
      onDevice.queryFields,
      [...GPU_QUERY_FIELDS],
      'no field was rejected and swapped on the H200',
    );
  });

  test('on the H200 the collector ran --version and -L once, then two commands per poll, all exiting 0', () => {
    const onDevice = JSON.parse(readFileSync(join(CAPTURES_DIR, DIR, 'agent-collect.json'), 'utf8')) as {
      runs: { status: string; commands: { args: string; code: number | null }[] }[];
    };
    const kinds = (r: (typeof onDevice.runs)[number]) => r.commands.map((c) => c.args.split(/[= ]/)[0]);
    assert.ok(onDevice.runs.length >= 2);
    assert.deepEqual(kinds(onDevice.runs[0]!), ['--query-gpu', '--version', '-L', '--query-compute-apps']);
    for (const r of onDevice.runs.slice(1)) {
      assert.equal(r.status, 'ok');
      assert.deepEqual(kinds(r), ['--query-gpu', '--query-compute-apps']);
    }
    for (const r of onDevice.runs) for (const c of r.commands) assert.equal(c.code, 0, c.args);
  });
});
