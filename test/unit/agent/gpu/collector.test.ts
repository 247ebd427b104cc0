import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type CommandResult,
  type CommandRunner,
  ExecFileRunner,
  GpuCollector,
} from '../../../../agent/src/gpu/collector.js';
import { parseQueryGpu } from '../../../../agent/src/gpu/parse.js';
import { captureFiles, capturePath, FAKE_NVIDIA_SMI_DIR, readSections } from './captures.js';

const H100 = 'linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt';
const MIG = 'linux-x86_64__nvidia-h100-mig__590.48.01.txt';
const L40S = 'linux-x86_64__nvidia-l40s__595.80.txt';

/** PATH with the fake first, and node's own folder so the fake's `#!/usr/bin/env node` resolves. */
const FAKE_PATH = [FAKE_NVIDIA_SMI_DIR, dirname(process.execPath)].join(delimiter);

/**
 * The real runner (execFile) over the real fake script, with the fake's mode switchable between runs,
 * counting what it was asked to run and how many ran at once. Runs in any mode but `hang` get at least
 * 10 s, so that a short collector timeout meant for the hang does not trip on a loaded machine.
 */
class FakeSmi implements CommandRunner {
  mode: 'ok' | 'hang' | 'driver' | 'unknown' = 'ok';
  runs: string[][] = [];
  inFlight = 0;
  maxInFlight = 0;

  constructor(
    private readonly capture: string,
    private readonly extraEnv: Record<string, string> = {},
  ) {}

  async run(cmd: string, args: string[], timeoutMs: number): Promise<CommandResult> {
    this.runs.push(args);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const env = {
        PATH: FAKE_PATH,
        FAKE_NVIDIA_SMI_CAPTURE: capturePath(this.capture),
        FAKE_NVIDIA_SMI_MODE: this.mode,
        ...this.extraEnv,
      };
      // Only a hang should time out: answering runs get room for a slow, loaded CI machine.
      const limit = this.mode === 'hang' ? timeoutMs : Math.max(timeoutMs, 10_000);
      return await new ExecFileRunner(env).run(cmd, args, limit);
    } finally {
      this.inFlight--;
    }
  }

  count(first: string): number {
    return this.runs.filter((a) => a[0]?.startsWith(first)).length;
  }
}

/** The capture's full query-gpu section, parsed: what a collect must report. */
function expectedGpus(file: string, phase: 'idle' | 'load') {
  const csv = readSections(file).get(`${phase} :: query-gpu`)!;
  const fields = csv
    .split('\n')[0]!
    .split(', ')
    .map((h) => h.replace(/ \[.*\]$/, ''));
  return parseQueryGpu(csv, fields);
}

/** Processes whose parent is this test process (zombies included). Linux only. */
function children(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const hasProc = existsSync('/proc/self/stat');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('GpuCollector over the fake nvidia-smi', () => {
  for (const file of captureFiles()) {
    for (const phase of ['idle', 'load'] as const) {
      test(`ok: ${file} (${phase}) matches the capture`, async () => {
        const runner = new FakeSmi(file, { FAKE_NVIDIA_SMI_LOAD: phase === 'load' ? 'loaded' : 'idle' });
        const state = await new GpuCollector({ runner, now: () => 1234 }).collect();
        assert.equal(state.status, 'ok', state.error);
        assert.equal(state.error, undefined);
        assert.equal(state.collectedAtMs, 1234);
        assert.deepEqual(state.gpus, expectedGpus(file, phase));
        const version = readSections(file).get('capabilities :: version')!;
        assert.ok(state.driverVersion && version.includes(`DRIVER version      : ${state.driverVersion}`));
        assert.match(state.cudaVersion ?? '', /^13\.[12]$/);
        const apps = (readSections(file).get(`${phase} :: query-compute-apps`) ?? '').split('\n').length - 1;
        assert.equal(state.processes.length, apps);
      });
    }
  }

  test('ok: the MIG capture reports its four MIG devices under the GPU', async () => {
    const runner = new FakeSmi(MIG, { FAKE_NVIDIA_SMI_LOAD: 'loaded' });
    const state = await new GpuCollector({ runner }).collect();
    assert.equal(state.status, 'ok');
    assert.equal(state.gpus[0]!.migMode, 'enabled');
    assert.equal(state.mig.length, 1);
    assert.equal(state.mig[0]!.gpuUuid, state.gpus[0]!.uuid);
    assert.deepEqual(
      state.mig[0]!.devices.map((d) => `${d.index}:${d.profile}`),
      ['0:3g.40gb', '1:2g.20gb', '2:1g.10gb', '3:1g.10gb'],
    );
    assert.deepEqual(
      state.processes.map((p) => [p.pid, p.processName, p.usedMemoryMiB]),
      [
        [21180, '/root/tools/memhog', 2296],
        [21181, '/root/tools/memhog', 1272],
        [21198, './gpu_burn', 7484],
      ],
    );
  });

  test('driver: status error with the message, no GPUs', async () => {
    const runner = new FakeSmi(H100);
    runner.mode = 'driver';
    const state = await new GpuCollector({ runner }).collect();
    assert.equal(state.status, 'error');
    assert.deepEqual(state.gpus, []);
    assert.match(
      state.error ?? '',
      /^NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/,
    );
  });

  test('unknown: status error with the message, even after a good collect', async () => {
    const runner = new FakeSmi(H100);
    const collector = new GpuCollector({ runner });
    assert.equal((await collector.collect()).status, 'ok');
    runner.mode = 'unknown';
    const state = await collector.collect();
    assert.equal(state.status, 'error');
    assert.deepEqual(state.gpus, []);
    assert.equal(state.error, 'Unable to determine the device handle for GPU0000:01:00.0: Unknown Error');
  });

  test('missing: no nvidia-smi on PATH → absent, no GPUs, no error', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-smi-'));
    after(() => rmSync(empty, { recursive: true, force: true }));
    const runner = new ExecFileRunner({ PATH: empty });
    const state = await new GpuCollector({ runner }).collect();
    assert.deepEqual(
      { ...state, collectedAtMs: 0 },
      {
        status: 'absent',
        gpus: [],
        mig: [],
        processes: [],
        cudaVersion: null,
        driverVersion: null,
        collectedAtMs: 0,
      },
    );
  });

  test('hang: killed after timeoutMs, stale with the last good GPUs, no child left, recovers', async () => {
    const runner = new FakeSmi(H100);
    const collector = new GpuCollector({ runner, timeoutMs: 300 });
    const good = await collector.collect();
    assert.equal(good.status, 'ok');

    runner.mode = 'hang';
    const started = Date.now();
    const pending = collector.collect();
    if (hasProc) {
      await sleep(150);
      assert.equal(children().length, 1, 'the hung fake is running');
    }
    const state = await pending;
    const took = Date.now() - started;
    assert.ok(took < 1000, `returned after ${took} ms`);
    assert.equal(state.status, 'stale');
    assert.deepEqual(state.gpus, good.gpus);
    assert.equal(state.collectedAtMs, good.collectedAtMs, 'the time of the values, not of the failure');
    assert.match(state.error ?? '', /nvidia-smi --query-gpu=.* timed out after 300 ms and was killed/);
    if (hasProc) assert.deepEqual(children(), [], 'the killed fake is gone (and reaped)');

    runner.mode = 'ok';
    const versionsBefore = runner.count('--version');
    const again = await collector.collect();
    assert.equal(again.status, 'ok');
    assert.equal(runner.count('--version'), versionsBefore + 1, 'identity re-read after a failure');
  });

  test('hang with no earlier good collect: error, not stale', async () => {
    const runner = new FakeSmi(H100);
    runner.mode = 'hang';
    const state = await new GpuCollector({ runner, timeoutMs: 300 }).collect();
    assert.equal(state.status, 'error');
    assert.deepEqual(state.gpus, []);
    assert.match(state.error ?? '', /timed out/);
  });

  test('concurrent collect() calls share one run; one nvidia-smi at a time', async () => {
    const runner = new FakeSmi(L40S);
    const collector = new GpuCollector({ runner });
    const [a, b, c] = [collector.collect(), collector.collect(), collector.collect()];
    assert.equal(a, b);
    assert.equal(b, c);
    await a;
    assert.equal(runner.maxInFlight, 1);
    assert.deepEqual(
      runner.runs.map((r) => r[0]!.replace(/=.*/, '')),
      ['--query-gpu', '--version', '-L', '--query-compute-apps'],
    );

    runner.runs = [];
    const [d, e] = [collector.collect(), collector.collect()];
    assert.equal(d, e);
    assert.notEqual(d, a, 'a finished collect is not reused');
    await d;
    assert.deepEqual(
      runner.runs.map((r) => r[0]!.replace(/=.*/, '')),
      ['--query-gpu', '--query-compute-apps'],
      'version and -L are cached',
    );
    assert.equal(runner.maxInFlight, 1);
    assert.equal(collector.last, await d);
  });

  test('fields an older or newer driver rejects are swapped for their fallback or dropped', async () => {
    const runner = new FakeSmi(L40S, {
      FAKE_NVIDIA_SMI_DROP_FIELDS: 'clocks_event_reasons.active,driver_version,compute_cap',
    });
    const collector = new GpuCollector({ runner });
    const state = await collector.collect();
    assert.equal(state.status, 'ok', state.error);
    assert.ok(collector.queryFields.includes('clocks_throttle_reasons.active'));
    assert.ok(collector.queryFields.includes('kmd_version'));
    assert.ok(!collector.queryFields.includes('compute_cap'));
    const want = expectedGpus(L40S, 'idle')[0]!;
    assert.deepEqual(state.gpus[0], { ...want, computeCap: null });
    assert.equal(state.driverVersion, '595.80');
    assert.equal(runner.count('--query-gpu'), 4, 'one try per rejected field, then the good one');

    await collector.collect();
    assert.equal(runner.count('--query-gpu'), 5, 'the working field list is remembered');
  });
});

describe('GpuCollector with a scripted runner', () => {
  const ok = (stdout: string): CommandResult => ({
    code: 0,
    stdout,
    stderr: '',
    timedOut: false,
    missing: false,
  });
  const FIELDS_ROW = '0, GPU-x, Card, 0000:01:00.0, 550.1, 100, 1, 99';

  test('a killed nvidia-smi that will not exit blocks new runs until it does', async () => {
    let release: () => void = () => {};
    const exited = new Promise<void>((r) => {
      release = r;
    });
    const calls: string[] = [];
    let hang = false;
    const runner: CommandRunner = {
      async run(_cmd, args) {
        calls.push(args[0] ?? '');
        if (hang) return { code: null, stdout: '', stderr: '', timedOut: true, missing: false, exited };
        if (args[0] === '--version') return ok('DRIVER version : 550.1\nCUDA Version : 12.4\n');
        if (args[0] === '-L') return ok('GPU 0: Card (UUID: GPU-x)\n');
        if (args[0]?.startsWith('--query-gpu')) return ok(`${FIELDS_ROW}\n`);
        return ok('');
      },
    };
    let t = 100;
    const collector = new GpuCollector({ runner, now: () => t++ });
    assert.equal((await collector.collect()).status, 'ok');
    hang = true;
    const stale = await collector.collect();
    assert.equal(stale.status, 'stale');
    const before = calls.length;
    const blocked = await collector.collect();
    assert.equal(blocked.status, 'stale');
    assert.match(blocked.error ?? '', /has not exited/);
    assert.equal(calls.length, before, 'nothing new was started');

    hang = false;
    release();
    await exited;
    await sleep(0);
    assert.equal((await collector.collect()).status, 'ok');
    assert.ok(calls.length > before);
  });

  test('a runner that throws becomes an error state, not a rejection', async () => {
    const runner: CommandRunner = {
      run: () => Promise.reject(new Error('boom')),
    };
    const state = await new GpuCollector({ runner }).collect();
    assert.equal(state.status, 'error');
    assert.match(state.error ?? '', /boom/);
  });

  test('a MIG mode change re-reads -L', async () => {
    let mig = 'Disabled';
    const lists: number[] = [];
    const runner: CommandRunner = {
      async run(_cmd, args) {
        if (args[0] === '--version') return ok('DRIVER version : 550.1\nCUDA Version : 12.4\n');
        if (args[0] === '-L') {
          lists.push(1);
          return ok(
            mig === 'Enabled'
              ? 'GPU 0: Card (UUID: GPU-x)\n  MIG 7g.80gb Device 0: (UUID: MIG-1)\n'
              : 'GPU 0: Card (UUID: GPU-x)\n',
          );
        }
        if (args[0]?.startsWith('--query-gpu')) {
          const fields = args[0].slice('--query-gpu='.length).split(',');
          return ok(
            `${fields.map((f) => (f === 'index' ? '0' : f === 'uuid' ? 'GPU-x' : f === 'mig.mode.current' ? mig : '[N/A]')).join(', ')}\n`,
          );
        }
        return ok('');
      },
    };
    const collector = new GpuCollector({ runner });
    assert.deepEqual((await collector.collect()).mig, []);
    await collector.collect();
    assert.equal(lists.length, 1);
    mig = 'Enabled';
    const state = await collector.collect();
    assert.equal(lists.length, 2);
    assert.deepEqual(state.mig, [
      { gpuIndex: 0, gpuUuid: 'GPU-x', devices: [{ index: 0, profile: '7g.80gb', uuid: 'MIG-1' }] },
    ]);
  });
});
