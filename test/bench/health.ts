/**
 * Issue 5's figures: how fast the agent answers a failure, what its nginx costs a request, and
 * what the agent costs a host at rest. Real control plane and agent processes, real Docker, the
 * web test image, the inference image with the tiny model, and the nginx image.
 *
 * 1. container exit → restart issued: each of 6 replicas (no probe) has its main process killed
 *    once; the figure is Docker's StartedAt − FinishedAt of the restarted container. Docker's own
 *    restart policy (`--restart always`) on the same image is measured interleaved, as the floor.
 * 2. unhealthy → restarted: each of 4 probed replicas is made sick through its published port;
 *    the figure is its new StartedAt − the time of the request, against interval × retries + 2 s.
 * 3. nginx overhead (proxy.ts), 4. the agent at rest (agent-rest.ts).
 *
 * Every part runs its own control plane and agent, and removes what it made, also on failure.
 */
import { loadavg } from 'node:os';
import type Docker from 'dockerode';
import { AGENT_NODE_OPTIONS } from '../../agent/src/install.js';
import { Cluster } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { waitFor } from '../helpers/procs.js';
import { benchAgentRest } from './agent-rest.js';
import { benchProxy } from './proxy.js';
import { fmt, median, quantile } from './stats.js';

const WEB = `${REGISTRY}/fleet-test/web:1`;
const RESTART_REPLICAS = Number(process.env.BENCH_RESTART_REPLICAS ?? 6);
const SICK_REPLICAS = Number(process.env.BENCH_SICK_REPLICAS ?? 4);
const BASELINE_LABEL = 'fleet-bench-restart=1';
// The flag that makes /cgi-bin/health fail lives in the container's /tmp; a restart clears it.
const HTTPD = [
  '/bin/sh',
  '-c',
  'rm -f /tmp/fleet-sick; exec /usr/local/bin/busybox httpd -f -p 8080 -h /www',
];

/**
 * The agent's own defaults (`fleet agent --help`), passed so that the Cluster helper's 1 s test
 * intervals are overridden (the last value of a flag wins): every part measures the agent as a
 * host runs it, at log level info.
 */
export const PRODUCTION_ARGS = [
  '--resync',
  '10s',
  '--heartbeat',
  '5s',
  '--gpu-interval',
  '10s',
  '--facts-interval',
  '5m',
];
/**
 * The agent's environment as its systemd unit gives it: info logs and the unit's Node flags
 * (agent/src/install.ts AGENT_NODE_OPTIONS); `BENCH_AGENT_NODE_OPTIONS` replaces those ('' for none).
 */
export const PRODUCTION_ENV = {
  FLEET_LOG_LEVEL: 'info',
  NODE_OPTIONS: process.env.BENCH_AGENT_NODE_OPTIONS ?? AGENT_NODE_OPTIONS,
};

export const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

/** Docker's RFC 3339 timestamps carry nanoseconds; Date.parse keeps milliseconds at best. */
export function dockerMs(t: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(t);
  if (!m) return Date.parse(t);
  return Date.parse(`${m[1]}Z`) + (m[2] ? Number(`0.${m[2]}`) * 1000 : 0);
}

/** median / p95 / max of a list of milliseconds, on one line. */
export const spread = (s: readonly number[]) =>
  `median ${fmt(median(s))}  p95 ${fmt(quantile(s, 0.95))}  max ${fmt(Math.max(...s))}  (n=${s.length})`;

/** The agent's pino lines (JSON, one per line) from its log file. */
export function agentLog(cluster: Cluster, node: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of cluster.log(`agent-${node}.log`).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {}
  }
  return out;
}

const inspect = (id: string) => docker.getContainer(id).inspect();

/** Resolves with the container once it runs again with a StartedAt other than `before`'s. */
function restarted(id: string, before: Docker.ContainerInspectInfo, timeoutMs = 20_000) {
  return waitFor(
    `container ${id.slice(0, 12)} started again`,
    async () => {
      const c = await inspect(id);
      return c.State.Running && c.State.StartedAt !== before.State.StartedAt ? c : undefined;
    },
    timeoutMs,
    20,
  );
}

async function removeBaseline() {
  for (const c of await docker.listContainers({ all: true, filters: { label: [BASELINE_LABEL] } }))
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => {});
}

/** Applies `yaml` on a fresh control plane + agent for `node` and runs `fn`; removes everything after. */
export async function withAgent<T>(
  node: string,
  yaml: string,
  fn: (cluster: Cluster) => Promise<T>,
  opts: {
    args?: string[];
    env?: Record<string, string>;
    wait?: boolean;
    /** Removes what `fn` made beside the agent's containers (before their network goes). */
    cleanup?: () => Promise<void>;
  } = {},
): Promise<T> {
  await removeManaged([node]);
  const cluster = new Cluster();
  try {
    await cluster.startServer();
    cluster.startAgent(node, {}, [...PRODUCTION_ARGS, ...(opts.args ?? [])], {
      ...PRODUCTION_ENV,
      ...opts.env,
    });
    await cluster.nodeConnected(node);
    const wait = opts.wait === false ? ['--no-wait'] : ['--wait', '--timeout', '120s'];
    const r = await cluster.cli('apply', cluster.playbook(`${node}.yaml`, yaml), ...wait);
    if (r.code !== 0) throw new Error(`fleet apply failed (${r.code}): ${r.stderr}${r.stdout}`);
    return await fn(cluster);
  } finally {
    await cluster.close().catch(() => {});
    await opts.cleanup?.();
    await removeManaged([node]);
  }
}

/** Part 1: every replica killed once (a first restart is immediate; later ones back off by design). */
async function exitToRestart() {
  const node = 'bench-exit';
  const yaml = `name: bexit\nhosts: all\nservices:\n  web:\n    image: ${WEB}\n    replicas: ${RESTART_REPLICAS}\n`;
  await removeBaseline();
  try {
    return await withAgent(
      node,
      yaml,
      async (cluster) => {
        const running = async () =>
          (await managedContainers(node)).filter(
            (c) => c.Labels['fleet.service'] === 'web' && c.State === 'running',
          );
        const replicas = await waitFor(
          `${RESTART_REPLICAS} replicas running`,
          async () => {
            const l = await running();
            return l.length === RESTART_REPLICAS ? l : undefined;
          },
          60_000,
        );
        // The floor: Docker restarting the same image, with the same init and on the same network,
        // by its own policy.
        const network = (await inspect(replicas[0]!.Id)).HostConfig.NetworkMode;
        const baseline: string[] = [];
        for (let i = 0; i < RESTART_REPLICAS; i++) {
          const c = await docker.createContainer({
            Image: WEB,
            Labels: { 'fleet-bench-restart': '1' },
            HostConfig: { RestartPolicy: { Name: 'always' }, Init: true, NetworkMode: network },
          });
          await c.start();
          baseline.push(c.id);
        }
        await new Promise((r) => setTimeout(r, 2_000)); // the agent settled; the baseline is up
        const kill = async (id: string) => {
          const before = await inspect(id);
          const killedAt = Date.now();
          process.kill(before.State.Pid, 'SIGKILL');
          const after = await restarted(id, before);
          const key = `${after.Config.Labels['fleet.deployment']}/${after.Config.Labels['fleet.service']}/${after.Config.Labels['fleet.replica']}`;
          return {
            key,
            killedAt,
            finished: dockerMs(after.State.FinishedAt),
            started: dockerMs(after.State.StartedAt),
          };
        };
        const fleet: Awaited<ReturnType<typeof kill>>[] = [];
        const floor: Awaited<ReturnType<typeof kill>>[] = [];
        for (let i = 0; i < RESTART_REPLICAS; i++) {
          // Alternate which goes first, so neither always runs on a machine the other just disturbed.
          if (i % 2 === 0) {
            fleet.push(await kill(replicas[i]!.Id));
            floor.push(await kill(baseline[i]!));
          } else {
            floor.push(await kill(baseline[i]!));
            fleet.push(await kill(replicas[i]!.Id));
          }
        }
        // When the agent issued each start, from its log: its reaction, and Docker's start after it.
        const log = agentLog(cluster, node);
        const issuedAt = (s: (typeof fleet)[number]) =>
          (log.find(
            (l) =>
              Number(l.time) >= s.killedAt &&
              l.msg === 'executing plan' &&
              Array.isArray(l.steps) &&
              (l.steps as string[]).includes(`start ${s.key}`),
          )?.time as number | undefined) ?? Number.NaN;
        return {
          fleetMs: fleet.map((s) => s.started - s.finished),
          reactMs: fleet.map((s) => issuedAt(s) - s.finished),
          startMs: fleet.map((s) => s.started - issuedAt(s)),
          dockerMs: floor.map((s) => s.started - s.finished),
        };
      },
      { wait: false, cleanup: removeBaseline },
    );
  } finally {
    await removeBaseline();
  }
}

interface Detail {
  nodes: { services: { service: string; state: string; containers: { id: string; health: string }[] }[] }[];
}

/** Part 2: a replica whose probe starts failing, until Docker started it again. */
async function unhealthyToRestart() {
  const node = 'bench-sick';
  const yaml = `name: bsick
hosts: all
services:
  web:
    image: ${WEB}
    replicas: ${SICK_REPLICAS}
    port: 8080
    command: ${JSON.stringify(HTTPD)}
    health: { path: /cgi-bin/health, interval: 1s, timeout: 500ms, retries: 3, start_period: 2s }
`;
  return withAgent(node, yaml, async (cluster) => {
    const allHealthy = async () => {
      const d = await cluster.cliJson<Detail>('status', 'bsick');
      const s = d.nodes[0]?.services.find((x) => x.service === 'web');
      return s?.state === 'healthy' && s.containers.every((c) => c.health === 'healthy');
    };
    await waitFor('all replicas healthy', allHealthy, 60_000, 200);
    const ids = (await managedContainers(node))
      .filter((c) => c.Labels['fleet.service'] === 'web')
      .map((c) => c.Id);
    const samples: { sickAt: number; id: string; key: string; finished: number; started: number }[] = [];
    for (const id of ids) {
      const before = await inspect(id);
      const port = before.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort;
      if (!port) throw new Error(`replica ${id.slice(0, 12)} publishes no port`);
      const sickAt = Date.now();
      const r = await fetch(`http://127.0.0.1:${port}/cgi-bin/sick`);
      if (r.status !== 200) throw new Error(`/cgi-bin/sick answered ${r.status}`);
      const after = await restarted(id, before, 30_000);
      samples.push({
        sickAt,
        id,
        key: `${after.Config.Labels['fleet.deployment']}/${after.Config.Labels['fleet.service']}/${after.Config.Labels['fleet.replica']}`,
        finished: dockerMs(after.State.FinishedAt),
        started: dockerMs(after.State.StartedAt),
      });
      await waitFor('all replicas healthy again', allHealthy, 30_000, 200);
    }
    // When the agent saw each one unhealthy and issued the restart, from its own (debug) log.
    const log = agentLog(cluster, node);
    const at = (s: (typeof samples)[number], pred: (l: Record<string, unknown>) => boolean) =>
      (log.find((l) => Number(l.time) >= s.sickAt && pred(l))?.time as number | undefined) ?? Number.NaN;
    return samples.map((s) => {
      const unhealthy = at(
        s,
        (l) => l.msg === 'health: status changed' && l.id === s.id && l.to === 'unhealthy',
      );
      const issued = at(
        s,
        (l) =>
          l.msg === 'executing plan' &&
          Array.isArray(l.steps) &&
          (l.steps as string[]).includes(`restart ${s.key}`),
      );
      return {
        totalMs: s.started - s.sickAt,
        detectMs: unhealthy - s.sickAt,
        issueMs: issued - unhealthy,
        stopMs: s.finished - issued,
        startMs: s.started - s.finished,
      };
    });
  });
}

async function partExit(): Promise<string[]> {
  const exit = await exitToRestart();
  return [
    `1. container exit → restarted (Docker StartedAt − FinishedAt), ${exit.fleetMs.length} replicas killed once each, interleaved with Docker's own --restart always:`,
    `  fleet agent           ${spread(exit.fleetMs)}   target ≤ 1000 ms: ${verdict(Math.max(...exit.fleetMs) <= 1_000)}`,
    `    its parts, medians: exit → agent issues the start ${fmt(median(exit.reactMs))} (max ${fmt(Math.max(...exit.reactMs))}), → Docker started it ${fmt(median(exit.startMs))}`,
    `  docker restart=always ${spread(exit.dockerMs)}   (the floor: Docker's first restart waits 100 ms)`,
  ];
}

async function partSick(): Promise<string[]> {
  const sick = await unhealthyToRestart();
  const bound = 1_000 * 3 + 2_000;
  const total = sick.map((s) => s.totalMs);
  const med = (k: keyof (typeof sick)[number]) => fmt(median(sick.map((s) => s[k])));
  return [
    `2. unhealthy → restarted (new StartedAt − the /cgi-bin/sick request), probe 1s × 3 retries, ${total.length} replicas:`,
    `  ${spread(total)}   target ≤ ${bound} ms: ${verdict(Math.max(...total) <= bound)}`,
    `  medians of its parts: → marked unhealthy ${med('detectMs')}, → restart issued ${med('issueMs')}, → old run ended ${med('stopMs')}, → started ${med('startMs')}`,
  ];
}

/**
 * All four parts, one after the other. A part that fails is reported (and the exit code set) and
 * the others still run; the load average before and after each part says whether the machine was
 * busy with something else meanwhile.
 */
export async function benchHealth(): Promise<string[]> {
  await requireEngines([WEB]);
  const lines = [
    `agent health, restarts and the proxy (issue 5), ${new Date().toISOString()}, agent flags ${PRODUCTION_ARGS.join(' ')}:`,
  ];
  const load = () => loadavg()[0]!.toFixed(2);
  for (const part of [partExit, partSick, benchProxy, benchAgentRest]) {
    const before = load();
    try {
      lines.push(...(await part()));
    } catch (err) {
      process.exitCode = 1;
      lines.push(`  ${part.name} FAILED: ${(err as Error).stack ?? err}`);
    }
    lines.push(`  (1-min load average ${before} before, ${load()} after)`);
    process.stderr.write(`# ${part.name} done\n`);
  }
  return lines;
}
