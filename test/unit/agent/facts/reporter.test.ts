import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HostBase } from '../../../../agent/src/facts/host.js';
import { FactsReporter, type FactsReporterDeps } from '../../../../agent/src/facts/reporter.js';
import type { GpuCollector, GpuState } from '../../../../agent/src/gpu/collector.js';
import type { ComputeApp, GpuSample } from '../../../../agent/src/gpu/parse.js';
import type { AgentMetrics } from '../../../../agent/src/metrics.js';
import { systemClock } from '../../../../common/clock.js';
import type { Logger } from '../../../../common/log.js';
import type { GpuFacts, HostFacts } from '../../../../proto/gen/fleet/v1/agent.js';

const UUID = 'GPU-aaaaaaaa-0000-0000-0000-000000000001';
const ID_MANAGED = 'a'.repeat(64);
const ID_OTHER = 'b'.repeat(64);

const sample = (over: Partial<GpuSample> = {}): GpuSample => ({
  index: 0,
  uuid: UUID,
  name: 'NVIDIA L40S',
  busId: '00000000:18:00.0',
  driverVersion: '595.80',
  memoryTotalMiB: 46_068,
  memoryUsedMiB: 1_000,
  memoryFreeMiB: 45_068,
  utilizationGpuPct: 10,
  utilizationMemoryPct: 1,
  temperatureC: 30,
  powerDrawW: 35,
  powerLimitW: 350,
  fanSpeedPct: null,
  computeCap: '8.9',
  migMode: null,
  eccUncorrected: 0,
  retiredPagesPending: false,
  throttleReasonsMask: 0,
  throttleReasons: [],
  pstate: 'P8',
  ...over,
});

const gpuState = (gpu: Partial<GpuSample> = {}, processes: ComputeApp[] = []): GpuState => ({
  status: 'ok',
  gpus: [sample(gpu)],
  mig: [],
  cudaVersion: '13.2',
  driverVersion: '595.80',
  processes,
  collectedAtMs: 1_000,
});

const hostBase = (over: Partial<HostBase> = {}): HostBase => ({
  hostname: 'gpu-01',
  os: 'Debian GNU/Linux 12',
  kernel: '6.1.0',
  arch: 'x64',
  cpuModel: 'AMD EPYC',
  cpuCores: 64,
  memoryTotalBytes: 256 * 1024 ** 3,
  memoryAvailableBytes: 200 * 1024 ** 3,
  disks: [{ mount: '/', fs: '/dev/sda1', sizeBytes: 1e12, availableBytes: 5e11, roles: ['root'] }],
  dockerVersion: '27.3.1',
  dockerRuntimes: ['nvidia', 'runc'],
  nvidiaRuntime: true,
  addresses: ['10.0.0.5'],
  ...over,
});

/** Resolves once `cond` holds (checked every 2 ms), failing after 2 s. */
async function waitFor(cond: () => boolean, what = 'condition') {
  const end = Date.now() + 2_000;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

interface Rig {
  reporter: FactsReporter;
  sent: HostFacts[];
  warnings: string[];
  hostCalls: () => number;
  containerCalls: () => number;
}

/**
 * A reporter over stubs: the GPU collector hands out `states` in order (then repeats the last), the
 * host() stub is `host` (a HostBase each call by default). Intervals default to "never" so only
 * start() polls unless a test asks for timers.
 */
function rig(
  states: GpuState[],
  over: Partial<Omit<FactsReporterDeps, 'host'>> & { host?: (call: number) => Promise<HostBase> } = {},
): Rig {
  let i = 0;
  const gpu = {
    collect: () => Promise.resolve(states[Math.min(i++, states.length - 1)]!),
  } as unknown as GpuCollector;
  let hostCalls = 0;
  let containerCalls = 0;
  const sent: HostFacts[] = [];
  const warnings: string[] = [];
  const log = {
    warn: (_o: unknown, msg: string) => void warnings.push(msg),
    info: () => {},
    error: () => {},
    debug: () => {},
  } as unknown as Logger;
  const { host, ...rest } = over;
  const reporter = new FactsReporter({
    gpu,
    host: () => {
      hostCalls++;
      return host ? host(hostCalls) : Promise.resolve(hostBase());
    },
    containers: () => {
      containerCalls++;
      return Promise.resolve([]);
    },
    send: (f) => void sent.push(structuredClone(f)),
    log,
    gpuIntervalMs: 1e9,
    hostIntervalMs: 1e9,
    clock: { ...systemClock, now: () => 42_000 },
    containerOfPid: () => Promise.resolve(undefined),
    ...rest,
  });
  return { reporter, sent, warnings, hostCalls: () => hostCalls, containerCalls: () => containerCalls };
}

describe('FactsReporter', () => {
  test('start() sends the full facts: host and GPUs', async () => {
    const { reporter, sent } = rig([gpuState()]);
    assert.equal(reporter.latest(), undefined);
    await reporter.start();
    reporter.stop();
    const last = sent.at(-1)!;
    assert.equal(last.hostname, 'gpu-01');
    assert.equal(last.collectedAtMs, 42_000);
    assert.equal(last.stale, false);
    assert.equal(last.gpu?.status, 'ok');
    assert.equal(last.gpu?.gpus[0]?.uuid, UUID);
    assert.deepEqual(reporter.latest(), last);
    assert.equal(reporter.polls, 1);
  });

  test('start() sends once', {}, async () => {
    const { reporter, sent } = rig([gpuState()]);
    await reporter.start();
    reporter.stop();
    assert.equal(sent.length, 1);
  });

  test('an insignificant change is kept as latest but not sent', async () => {
    const states = [gpuState(), gpuState({ utilizationGpuPct: 15, temperatureC: 32 })];
    const { reporter, sent } = rig(states, { gpuIntervalMs: 1 });
    await reporter.start();
    const n0 = sent.length;
    await waitFor(() => reporter.polls >= 3, '3 polls');
    reporter.stop();
    assert.equal(sent.length, n0);
    assert.equal(reporter.latest()?.gpu?.gpus[0]?.utilizationGpuPct, 15);
    assert.equal(sent.at(-1)?.gpu?.gpus[0]?.utilizationGpuPct, 10);
  });

  test('a significant GPU change is sent, an insignificant one is not (in order)', async () => {
    const states = [gpuState(), gpuState({ utilizationGpuPct: 19 }), gpuState({ utilizationGpuPct: 20 })];
    const { reporter, sent } = rig(states, { gpuIntervalMs: 1 });
    await reporter.start();
    const n0 = sent.length;
    await waitFor(() => reporter.polls >= 4, '4 polls');
    reporter.stop();
    assert.equal(sent.length, n0 + 1);
    assert.equal(sent.at(-1)?.gpu?.gpus[0]?.utilizationGpuPct, 20);
    assert.equal(reporter.latest()?.gpu?.gpus[0]?.utilizationGpuPct, 20);
  });

  test('resend() sends the latest facts again even when unchanged; before any facts it sends nothing', async () => {
    const { reporter, sent } = rig([gpuState()]);
    reporter.resend();
    assert.equal(sent.length, 0);
    await reporter.start();
    reporter.stop();
    const n0 = sent.length;
    reporter.resend();
    assert.equal(sent.length, n0 + 1);
    assert.deepEqual(sent.at(-1), reporter.latest());
    reporter.resend();
    assert.equal(sent.length, n0 + 2);
  });

  test('host facts failing later: last facts sent again as stale, logged, no throw', async () => {
    const { reporter, sent, warnings, hostCalls } = rig([gpuState()], {
      hostIntervalMs: 1,
      host: (call) => (call === 1 ? Promise.resolve(hostBase()) : Promise.reject(new Error('si exploded'))),
    });
    await reporter.start();
    const n0 = sent.length;
    await waitFor(() => hostCalls() >= 3, '3 host polls');
    reporter.stop();
    assert.equal(sent.length, n0 + 1, 'stale sent once, not on every failure');
    const last = sent.at(-1)!;
    assert.equal(last.stale, true);
    assert.equal(last.hostname, 'gpu-01');
    assert.equal(last.gpu?.gpus[0]?.uuid, UUID);
    assert.equal(reporter.latest()?.stale, true);
    assert.ok(warnings.some((w) => /host facts failed/.test(w)));
  });

  test('host facts failing from the start: start() resolves, nothing is sent', async () => {
    const { reporter, sent, warnings } = rig([gpuState()], {
      host: () => Promise.reject(new Error('no /proc')),
    });
    await reporter.start();
    reporter.stop();
    assert.equal(sent.length, 0);
    assert.equal(reporter.latest(), undefined);
    assert.equal(warnings.length, 1);
    assert.equal(reporter.polls, 1);
  });

  test('host facts recovering clear the stale flag', async () => {
    const { reporter, sent, hostCalls } = rig([gpuState()], {
      hostIntervalMs: 1,
      host: (call) => (call === 2 ? Promise.reject(new Error('once')) : Promise.resolve(hostBase())),
    });
    await reporter.start();
    await waitFor(() => hostCalls() >= 3, '3 host polls');
    reporter.stop();
    assert.deepEqual(
      sent.slice(-2).map((f) => f.stale),
      [true, false],
    );
  });

  test('facts stay stale while the host cannot be read, across GPU polls', {}, async () => {
    const { reporter, hostCalls } = rig([gpuState()], {
      gpuIntervalMs: 1,
      hostIntervalMs: 1,
      // ok, then fails, then hangs: the host is unreadable from the 2nd poll on
      host: (call) =>
        call === 1
          ? Promise.resolve(hostBase())
          : call === 2
            ? Promise.reject(new Error('gone'))
            : new Promise<HostBase>(() => {}),
    });
    await reporter.start();
    await waitFor(() => hostCalls() >= 3, '3 host polls');
    const p = reporter.polls;
    await waitFor(() => reporter.polls >= p + 2, '2 more GPU polls');
    reporter.stop();
    assert.equal(reporter.latest()?.stale, true);
  });

  test('GPU processes are named after their containers', async () => {
    const pids: Record<number, string | undefined> = { 10: ID_MANAGED, 20: ID_OTHER, 30: undefined };
    const { reporter, sent, containerCalls } = rig(
      [
        gpuState({}, [
          { gpuUuid: UUID, pid: 10, processName: 'llama-server', usedMemoryMiB: 20_000 },
          { gpuUuid: UUID, pid: 20, processName: 'python3', usedMemoryMiB: 1_000 },
          { gpuUuid: UUID, pid: 30, processName: 'Xorg', usedMemoryMiB: 5 },
        ]),
      ],
      {
        containerOfPid: (pid) => Promise.resolve(pids[pid]),
        containers: () => Promise.resolve([{ id: ID_MANAGED, name: 'llm-chat-0' }]),
      },
    );
    await reporter.start();
    reporter.stop();
    assert.equal(containerCalls(), 0, 'the stub passed in replaced the counting one');
    assert.deepEqual(
      sent.at(-1)?.gpu?.processes.map((p) => [p.pid, p.container]),
      [
        [10, 'llm-chat-0'],
        [20, 'bbbbbbbbbbbb'], // not managed: short id
        [30, ''], // not in a container
      ],
    );
  });

  test('containers() failing: processes named by short id, no throw', async () => {
    const { reporter, sent } = rig(
      [gpuState({}, [{ gpuUuid: UUID, pid: 10, processName: 'x', usedMemoryMiB: 1 }])],
      {
        containerOfPid: () => Promise.resolve(ID_MANAGED),
        containers: () => Promise.reject(new Error('docker down')),
      },
    );
    await reporter.start();
    reporter.stop();
    assert.equal(sent.at(-1)?.gpu?.processes[0]?.container, 'aaaaaaaaaaaa');
  });

  test('no GPU processes: the container list is not asked for', async () => {
    const { reporter, containerCalls } = rig([gpuState()]);
    await reporter.start();
    reporter.stop();
    assert.equal(containerCalls(), 0);
  });

  test('each GPU poll updates the metrics with the wire facts and a duration', async () => {
    const calls: [GpuFacts, number][] = [];
    const metrics = {
      updateGpus: (f: GpuFacts, s: number) => void calls.push([f, s]),
    } as unknown as AgentMetrics;
    const { reporter } = rig([gpuState()], { metrics });
    await reporter.start();
    reporter.stop();
    assert.equal(calls.length, 1);
    assert.equal(calls[0]![0].gpus[0]?.uuid, UUID);
    assert.ok(calls[0]![1] >= 0 && calls[0]![1] < 5);
  });

  test('whenReady(): resolves at once before start(), and after the first collection once started', async () => {
    let releaseHost!: () => void;
    const { reporter } = rig([gpuState()], {
      host: () => new Promise<HostBase>((r) => (releaseHost = () => r(hostBase()))),
    });
    await reporter.whenReady();
    const started = reporter.start();
    let ready = false;
    const whenReady = reporter.whenReady().then(() => (ready = true));
    await sleep(5);
    assert.equal(ready, false);
    releaseHost();
    await whenReady;
    assert.equal(reporter.polls, 1);
    assert.ok(reporter.latest()?.gpu);
    await started;
    reporter.stop();
  });

  test('stop() stops both timers', async () => {
    const { reporter, hostCalls } = rig([gpuState()], { gpuIntervalMs: 20, hostIntervalMs: 20 });
    await reporter.start();
    await waitFor(() => reporter.polls >= 3 && hostCalls() >= 3, '3 polls of each');
    reporter.stop();
    const polls = reporter.polls;
    const hosts = hostCalls();
    await sleep(80);
    assert.equal(reporter.polls, polls);
    assert.equal(hostCalls(), hosts);
  });

  test('stop() while a GPU poll is in flight: no poll after it', async () => {
    let release!: () => void;
    let collects = 0;
    const gpu = {
      collect: () => {
        collects++;
        if (collects === 2) return new Promise<GpuState>((r) => (release = () => r(gpuState())));
        return Promise.resolve(gpuState());
      },
    } as unknown as GpuCollector;
    const { reporter } = rig([], { gpu, gpuIntervalMs: 1 });
    await reporter.start();
    await waitFor(() => collects === 2, 'the second collect');
    reporter.stop();
    release();
    await sleep(30);
    assert.equal(collects, 2);
    assert.equal(reporter.polls, 2);
  });

  test('timers do not pile up over many polls', {}, async () => {
    const { reporter } = rig([gpuState()], { gpuIntervalMs: 1 });
    await reporter.start();
    await waitFor(() => reporter.polls >= 20, '20 polls');
    reporter.stop();
    assert.ok((reporter as unknown as { timers: unknown[] }).timers.length <= 2);
  });
});
