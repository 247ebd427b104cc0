import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { requireEngines } from '../helpers/engines.js';
import { freePort, ROOT, waitFor } from '../helpers/procs.js';

/**
 * Host and GPU facts end to end: real agent processes whose nvidia-smi is the fake one
 * answering from real captures, a real control plane, `fleet nodes`, and the agent's /metrics
 * checked by Prometheus's own promtool.
 */
const FAKE_SMI = join(ROOT, 'test/helpers/fake-nvidia-smi/nvidia-smi');
const H100 = join(ROOT, 'test/fixtures/nvidia-smi/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt');

interface NodeJson {
  name: string;
  connected: boolean;
  lastSeenMs: number;
  gpus: { status: string; count: number; models: string; memoryTotalMiB: number; error: string };
  // biome-ignore lint/suspicious/noExplicitAny: proto JSON, checked field by field
  host?: any;
}

describe('facts: host facts, GPU inventory, agent metrics', { timeout: 120_000 }, () => {
  const cluster = new Cluster();
  const modeFile = join(cluster.dir, 'smi-mode');
  let metricsPort = 0;

  /** One node in detail (`fleet nodes NAME`): the list leaves the host facts out. */
  const node = async (name: string) => await cluster.cliJson<NodeJson>('nodes', name);

  before(async () => {
    await requireEngines();
    writeFileSync(modeFile, 'ok\n');
    metricsPort = await freePort();
    await cluster.startServer();
    const fast = ['--gpu-interval', '300ms', '--facts-interval', '2s', '--nvidia-smi', FAKE_SMI];
    cluster.startAgent(
      'facts-gpu',
      { gpu: 'true' },
      [...fast, '--metrics-listen', `127.0.0.1:${metricsPort}`],
      {
        FAKE_NVIDIA_SMI_CAPTURE: H100,
        FAKE_NVIDIA_SMI_MODE_FILE: modeFile,
      },
    );
    cluster.startAgent('facts-cpu', {}, [
      '--nvidia-smi',
      '/nonexistent/nvidia-smi',
      '--gpu-interval',
      '300ms',
    ]);
    await cluster.nodeConnected('facts-gpu');
    await cluster.nodeConnected('facts-cpu');
  });

  after(() => cluster.close());

  test('fleet nodes shows the GPUs from nvidia-smi and the host facts', async () => {
    const n = await waitFor('GPU facts reported', async () => {
      const x = await node('facts-gpu');
      return x?.gpus.count ? x : undefined;
    });
    assert.equal(n.gpus.status, 'ok');
    assert.equal(n.gpus.count, 1);
    assert.match(n.gpus.models, /^1× NVIDIA H100 80GB HBM3$/);
    assert.equal(n.gpus.memoryTotalMiB, 81559);
    const gpu = n.host.gpu.gpus[0];
    assert.match(gpu.uuid, /^GPU-/);
    assert.equal(n.host.gpu.driverVersion, '590.48.01');
    assert.equal(n.host.gpu.cudaVersion, '13.1');
    assert.ok(n.host.memoryTotalBytes > 0 && n.host.cpuCores > 0);
    assert.ok(n.host.dockerVersion.length > 0);
    assert.ok(!n.host.nvidiaRuntime, 'this machine has no nvidia runtime configured');
    const roles = n.host.disks.flatMap((d: { roles: string[] }) => d.roles);
    assert.ok(roles.includes('root') && roles.includes('docker'), `disk roles ${roles}`);

    const cpu = await waitFor('CPU-only node facts', async () => {
      const x = await node('facts-cpu');
      return x?.gpus.status === 'absent' ? x : undefined;
    });
    assert.equal(cpu.gpus.count, 0);
    await waitFor(
      'heartbeats from the node without nvidia-smi',
      async () => ((await node('facts-cpu'))?.lastSeenMs ?? 0) > cpu.lastSeenMs + 1500,
      10_000,
    );

    const text = await cluster.cli('nodes');
    assert.equal(text.code, 0);
    assert.match(text.stdout, /facts-gpu\s+connected\s+gpu=true\s+1× NVIDIA H100 80GB HBM3/);
    const detail = await cluster.cli('nodes', 'facts-gpu');
    assert.match(detail.stdout, /driver 590\.48\.01, CUDA 13\.1/);

    const history = (await (await cluster.api(`/v1/nodes/facts-gpu/gpu-history?limit=5`)).json()) as {
      samples: { gpus: { uuid: string }[] }[];
    };
    assert.ok(history.samples.length >= 1);
    assert.equal(history.samples[0]!.gpus[0]!.uuid, gpu.uuid);
  });

  test('the agent /metrics passes promtool and carries GPU gauges and agent health', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    for (const name of [
      'nvidia_smi_memory_total_bytes{',
      'nvidia_smi_utilization_gpu_ratio{',
      'nvidia_smi_temperature_gpu{',
      'nvidia_smi_power_draw_watts{',
      'fleet_agent_reconcile_rounds_total',
      'fleet_agent_restarts_issued_total',
      'fleet_agent_report_lag_seconds',
      'fleet_agent_gpu_collect_duration_seconds_bucket',
    ]) {
      assert.ok(text.includes(name), `metrics include ${name}`);
    }
    assert.match(text, /nvidia_smi_memory_total_bytes\{[^}]*uuid="GPU-[^}]*\} 85520809984/);
    let out = '';
    try {
      out = execFileSync('promtool', ['check', 'metrics'], {
        input: text,
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      const e = err as { status: number; stdout: string; stderr: string; code?: string };
      if (e.code === 'ENOENT')
        throw new Error("promtool not found: install Debian's prometheus package (scripts/test.sh does)");
      assert.fail(`promtool check metrics failed (${e.status}): ${e.stdout}${e.stderr}`);
    }
    assert.equal(out.trim(), '');
  });

  test('nvidia-smi hanging, then failing: GPU state says so and heartbeats keep flowing', async () => {
    writeFileSync(modeFile, 'hang\n');
    const stale = await waitFor(
      'stale GPU facts',
      async () => {
        const x = await node('facts-gpu');
        return x?.gpus.status === 'stale' ? x : undefined;
      },
      30_000,
    );
    assert.equal(stale.gpus.count, 1, 'the last good GPUs are kept');
    const seen = stale.lastSeenMs;
    await waitFor(
      'heartbeats while nvidia-smi hangs',
      async () => ((await node('facts-gpu'))?.lastSeenMs ?? 0) > seen + 1500,
      10_000,
    );
    assert.equal((await node('facts-gpu'))?.connected, true);

    writeFileSync(modeFile, 'driver\n');
    const failed = await waitFor(
      'driver failure reported',
      async () => {
        const x = await node('facts-gpu');
        return x?.gpus.status === 'error' ? x : undefined;
      },
      30_000,
    );
    assert.match(failed.gpus.error, /couldn't communicate with the NVIDIA driver/);
    const seenFailing = failed.lastSeenMs;
    await waitFor(
      'heartbeats while nvidia-smi fails',
      async () => ((await node('facts-gpu'))?.lastSeenMs ?? 0) > seenFailing + 1500,
      10_000,
    );
    const table = await cluster.cli('nodes');
    assert.match(table.stdout, /facts-gpu.*error: NVIDIA-SMI has failed/);

    writeFileSync(modeFile, 'ok\n');
    await waitFor('recovered', async () => (await node('facts-gpu'))?.gpus.status === 'ok', 30_000);
    // No nvidia-smi is left behind by the hang (a poll in flight right now is a few ms old).
    const old = execFileSync('ps', ['-eo', 'etimes=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter(
        (l) => l.includes(FAKE_SMI) && !l.includes('fleet.js') && Number(l.trim().split(/\s+/)[0]) >= 3,
      );
    assert.deepEqual(old, [], 'no hung nvidia-smi left running');
  });
});
