/**
 * What the agent costs a host when nothing happens: 2 probed replicas of the web image and their
 * nginx, healthy and settled, then RSS (/proc/PID/status VmRSS, sampled every 5 s) and CPU
 * (/proc/PID/stat utime+stime over the window, 10 ms ticks) of the agent process. The agent runs
 * with production intervals: its defaults (resync 10 s, heartbeat 5 s, GPUs every 10 s, host facts
 * every 5 min) and log level info, not the Cluster helper's 1 s test settings. A Node process with
 * an empty event loop runs beside it, measured the same way, as the floor any Node agent pays.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { docker, managedContainers, REGISTRY, requireEngines } from '../helpers/engines.js';
import { freePort, waitFor } from '../helpers/procs.js';
import { agentLog, PRODUCTION_ARGS, PRODUCTION_ENV, verdict, withAgent } from './health.js';

const WEB = `${REGISTRY}/fleet-test/web:1`;
const NGINX = `${REGISTRY}/fleet/nginx:1`;
const NODE = 'bench-rest';
const WINDOW_S = Number(process.env.BENCH_REST_WINDOW_S ?? 60);
const SETTLE_S = Number(process.env.BENCH_REST_SETTLE_S ?? 20);
const SAMPLE_S = 5;
const TICK = 100; // clock ticks per second (getconf CLK_TCK on Linux)
const RSS_TARGET_MB = 60;
const CPU_TARGET_PCT = 1;

const playbook = (listen: number) => `name: brest
hosts: all
services:
  web:
    image: ${WEB}
    replicas: 2
    port: 8080
    health: { path: /cgi-bin/health, interval: 5s, timeout: 2s, retries: 3, start_period: 10s }
proxy:
  image: ${NGINX}
  listen: "127.0.0.1:${listen}"
  routes:
    - { path: /, service: web }
`;

function cpuSeconds(pid: number) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

function memMB(pid: number) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? Number.NaN);
  return {
    rss: kb('VmRSS') / 1024,
    hwm: kb('VmHWM') / 1024,
    anon: kb('RssAnon') / 1024,
    file: kb('RssFile') / 1024,
  };
}

async function metric(url: string, name: string) {
  const text = await (await fetch(url)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchAgentRest(): Promise<string[]> {
  await requireEngines([WEB, NGINX]);
  const listen = await freePort();
  const floor = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  try {
    return await withAgent(NODE, playbook(listen), async (cluster) => {
      const agent = cluster.agents.get(NODE)!;
      await waitFor(
        'web served through nginx',
        async () => (await fetch(`http://127.0.0.1:${listen}/health`)).ok,
        30_000,
        200,
      );
      await sleep(SETTLE_S * 1000);
      const metricsUrl = agentLog(cluster, NODE).find((l) => l.msg === 'serving metrics')
        ?.metricsUrl as string;
      const containers = async () => {
        const list = await managedContainers(NODE);
        const inspected = await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
        return inspected
          .map((c) => `${c.Id}@${c.State.StartedAt}`)
          .sort()
          .join(',');
      };
      const proxy = (await managedContainers(NODE)).find((c) => c.Labels['fleet.role'] === 'proxy');
      const pids = async () => {
        const top = (await docker.getContainer(proxy!.Id).top()) as {
          Titles: string[];
          Processes: string[][];
        };
        return top.Processes.map((p) => p[top.Titles.indexOf('PID')])
          .sort()
          .join(',');
      };
      const count = (await managedContainers(NODE)).length;
      const before = { containers: await containers(), pids: await pids() };
      const rounds0 = await metric(metricsUrl, 'fleet_agent_reconcile_rounds_total');
      const restarts0 = await metric(metricsUrl, 'fleet_agent_restarts_issued_total');
      const logFrom = Date.now();
      const t0 = performance.now();
      const a0 = cpuSeconds(agent.pid!);
      const f0 = cpuSeconds(floor.pid!);
      const rss: number[] = [];
      const floorRss: number[] = [];
      for (let i = 0; i < WINDOW_S / SAMPLE_S; i++) {
        rss.push(memMB(agent.pid!).rss);
        floorRss.push(memMB(floor.pid!).rss);
        await sleep(SAMPLE_S * 1000);
      }
      const a1 = cpuSeconds(agent.pid!);
      const f1 = cpuSeconds(floor.pid!);
      const wall = (performance.now() - t0) / 1000;
      const logTo = Date.now();
      rss.push(memMB(agent.pid!).rss);
      floorRss.push(memMB(floor.pid!).rss);
      const { hwm, anon, file } = memMB(agent.pid!);
      const floorMem = memMB(floor.pid!);
      const rounds = (await metric(metricsUrl, 'fleet_agent_reconcile_rounds_total')) - rounds0;
      const restarts = (await metric(metricsUrl, 'fleet_agent_restarts_issued_total')) - restarts0;
      const after = { containers: await containers(), pids: await pids() };
      const inWindow = agentLog(cluster, NODE).filter(
        (l) => Number(l.time) >= logFrom && Number(l.time) <= logTo,
      );
      const n = (msg: string) => inWindow.filter((l) => l.msg === msg).length;
      const cpuPct = ((a1 - a0) / wall) * 100;
      const rssMax = Math.max(...rss);
      const mean = (s: number[]) => s.reduce((x, y) => x + y, 0) / s.length;
      return [
        `4. agent at rest: ${count} managed containers (2 web replicas probed every 5 s, 1 nginx), settled ${SETTLE_S} s, then a ${wall.toFixed(1)} s window;`,
        `   agent flags: ${PRODUCTION_ARGS.join(' ')} (the defaults), FLEET_LOG_LEVEL=info, NODE_OPTIONS=${JSON.stringify(PRODUCTION_ENV.NODE_OPTIONS)} (as its unit runs it)`,
        `  RSS      mean ${mean(rss).toFixed(1)} MB, max ${rssMax.toFixed(1)} MB (at the end: ${anon.toFixed(1)} MB anonymous, ${file.toFixed(1)} MB file-backed; peak since start VmHWM ${hwm.toFixed(1)} MB); target ≤ ${RSS_TARGET_MB} MB: ${verdict(rssMax <= RSS_TARGET_MB)}`,
        `  CPU      ${cpuPct.toFixed(2)}% of one core (${((a1 - a0) * 1000).toFixed(0)} ms CPU); target ≤ ${CPU_TARGET_PCT}%: ${verdict(cpuPct <= CPU_TARGET_PCT)}`,
        `  floor: node with an empty event loop, same window: RSS ${mean(floorRss).toFixed(1)} MB (${floorMem.anon.toFixed(1)} anonymous, ${floorMem.file.toFixed(1)} file-backed), CPU ${(((f1 - f0) / wall) * 100).toFixed(2)}%`,
        `  in the window: ${rounds} reconcile rounds, ${restarts} restarts, ${n('executing plan')} plans executed, ${n('proxy updated')} proxy updates; containers untouched: ${after.containers === before.containers ? 'yes' : 'NO'}; nginx processes unchanged (no reload): ${after.pids === before.pids ? 'yes' : 'NO'}`,
      ];
    });
  } finally {
    floor.kill('SIGTERM');
  }
}
