import { type ChildProcess, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers/procs.js';
import type { FromChild, SimConfig, ToChild } from './sim-agents.js';

const CHILD = fileURLToPath(new URL('./sim-agents.js', import.meta.url));

/** What the agents said about one revision: how many acked it, the first and last ack, the last healthy report (wall ms). */
export interface AckSpread {
  /** When each node acked (wall ms). */
  at: Record<string, number>;
  count: number;
  firstMs: number;
  lastMs: number;
  healthy: number;
  lastHealthyMs: number;
}

/**
 * The benchmarks' playbook for simulated agents: every node labelled group=sim in one batch, a
 * new revision for each `i` (its GREETING), the rollout gated on `minHealthy`.
 */
export const simPlaybook = (deployment: string, i: number, minHealthy: string) => `name: ${deployment}
hosts: group=sim
serial: "100%"
rollout: { min_healthy_time: ${minHealthy}, healthy_deadline: 60s }
services:
  web:
    image: 127.0.0.1:5000/fleet-test/web:1
    env: { GREETING: "apply-${i}" }
    port: 8080
    health: { path: /cgi-bin/health, interval: 1s, timeout: 500ms, retries: 2, start_period: 1s }
`;

/**
 * N simulated agents (`sim-agents.ts`) spread over a few child processes, each agent on its own
 * HTTP/2 connection to one control plane. Children die with the parent: they exit when their IPC
 * channel closes, and `close` kills them too.
 */
export class SimFleet {
  private readonly children: ChildProcess[] = [];
  readonly nodes: string[];

  constructor(
    readonly size: number,
    cfg: Omit<SimConfig, 'nodes'>,
    procs = 2,
  ) {
    this.nodes = SimFleet.names(size);
    const per = Math.ceil(size / procs);
    for (let p = 0; p < procs; p++) {
      const nodes = this.nodes.slice(p * per, (p + 1) * per);
      if (nodes.length === 0) continue;
      // Each child gets its own nodes' join tokens only.
      const joinTokens = Object.fromEntries(nodes.map((n) => [n, cfg.joinTokens[n] ?? '']));
      const config: SimConfig = { ...cfg, nodes, joinTokens };
      // A file, not the environment: 2,500 join tokens pass the kernel's limit for one
      // environment string (E2BIG).
      const file = join(tmpdir(), `fleet-sim-${process.pid}-${p}.json`);
      writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
      this.children.push(
        fork(CHILD, [], {
          env: { ...process.env, FLEET_SIM_CONFIG_FILE: file },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
      );
    }
  }

  /** The simulated nodes' names, so join tokens can be minted for them before the fleet starts. */
  static names(size: number): string[] {
    return Array.from({ length: size }, (_, i) => `sim-${String(i + 1).padStart(5, '0')}`);
  }

  /** Resolves with the time (ms) until every agent is connected (it has its desired state). */
  async allConnected(timeoutMs: number): Promise<number> {
    const t0 = performance.now();
    await waitFor(
      `${this.size} simulated agents connected`,
      async () => (await this.connected()) === this.size,
      timeoutMs,
      100,
    );
    return performance.now() - t0;
  }

  async connected(): Promise<number> {
    const counts = await Promise.all(
      this.children.map((c) => ask<Extract<FromChild, { kind: 'connected' }>>(c, { kind: 'connected' })),
    );
    return counts.reduce((a, m) => a + m.count, 0);
  }

  /** When agents (re)connected since `sinceMs` (wall ms), across every child. */
  async connectsSince(sinceMs: number): Promise<number[]> {
    const parts = await Promise.all(
      this.children.map((c) =>
        ask<Extract<FromChild, { kind: 'connects' }>>(c, { kind: 'connects', sinceMs }),
      ),
    );
    return parts.flatMap((p) => p.times).sort((a, b) => a - b);
  }

  /** From now on agents report healthy after a random delay up to `ms` (0: with the ack). */
  async spread(ms: number) {
    await Promise.all(this.children.map((c) => ask(c, { kind: 'spread', ms })));
  }

  /** Every agent's acks of `revision`, once all acked it and reported it healthy, or after `waitMs`. */
  async acked(revision: number, waitMs: number): Promise<AckSpread> {
    const parts = await Promise.all(
      this.children.map((c) =>
        ask<Extract<FromChild, { kind: 'acks' }>>(c, { kind: 'acks', revision, waitMs }, waitMs + 5_000),
      ),
    );
    const acked = parts.filter((p) => p.count > 0);
    return {
      at: Object.assign({}, ...parts.map((p) => p.at)) as Record<string, number>,
      count: parts.reduce((a, p) => a + p.count, 0),
      firstMs: Math.min(...acked.map((p) => p.firstMs)),
      lastMs: Math.max(...acked.map((p) => p.lastMs)),
      healthy: parts.reduce((a, p) => a + p.healthy, 0),
      lastHealthyMs: Math.max(...acked.map((p) => p.lastHealthyMs)),
    };
  }

  close() {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  }
}

/** One request to a child and its answer (the next message of the same kind), bounded in time. */
function ask<T extends FromChild>(child: ChildProcess, m: ToChild, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', on);
      reject(new Error(`simulated agents did not answer ${m.kind} within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (reply: FromChild) => {
      if (
        reply.kind !== m.kind ||
        (reply.kind === 'acks' && m.kind === 'acks' && reply.revision !== m.revision)
      )
        return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(reply as T);
    };
    child.on('message', on);
    child.send(m);
  });
}
