import type { Step } from '../plan/planner.js';
import type { ReplicaKey } from '../replica-key.js';
import type { ContainerRuntime } from '../runtime.js';
import type { ContainerLifecycle } from './lifecycle.js';
import type { PullProgress } from './pull-progress.js';
import { aboutReplica, type EventSubject } from './reporter.js';

/**
 * Everything a step may touch, injected by the round. Each executor names the part it uses, so
 * what a step can do is visible in its signature (balena-supervisor's composition steps).
 */
export interface ExecutorContext {
  runtime: ContainerRuntime;
  lifecycle: ContainerLifecycle;
  /** Forgets a container's probe history (after the agent restarted it). */
  resetHealth: (id: string) => void;
  /** Images known to be present locally; a pull adds, a create that finds one gone removes. */
  images: Set<string>;
  pulls: PullProgress;
  event: (kind: string, message: string, about?: EventSubject) => void;
  /** The exit code of a container as last observed. */
  exitCodeOf: (id: string) => number | undefined;
  /** The agent's clock: a restart is timed from when it was issued, not when Docker finished it. */
  now: () => number;
  /**
   * Records a restart the agent issued at `issuedAtMs` (streak, counter, event). The backoff counts
   * from the issue, so Docker's own start time (seconds on a loaded host) does not stretch it.
   */
  restarted: (id: string, key: ReplicaKey, reason: string, issuedAtMs: number, exitCode?: number) => void;
}

type StepOf<K extends Step['kind']> = Extract<Step, { kind: K }>;

/** One executor per step kind: a kind without one fails to compile. */
export type Executors = {
  [K in Step['kind']]: (step: StepOf<K>, ctx: ExecutorContext) => Promise<void>;
};

async function remove(s: StepOf<'remove'>, ctx: Pick<ExecutorContext, 'runtime' | 'event'>) {
  for (const part of s.parts ?? []) await ctx.runtime.remove(part);
  await ctx.runtime.remove(s.id);
  ctx.event('container.removed', `${s.name}: ${s.reason}`, aboutReplica(s.key));
}

async function pull(s: StepOf<'pull'>, ctx: Pick<ExecutorContext, 'runtime' | 'event' | 'pulls' | 'images'>) {
  if (!(await ctx.runtime.imagePresent(s.image))) {
    ctx.pulls.begin(s.image);
    try {
      await ctx.runtime.pull(s.image, (p) => ctx.pulls.update(s.image, p));
    } finally {
      ctx.pulls.end(s.image);
    }
    ctx.event('image.pulled', s.image);
  }
  ctx.images.add(s.image);
}

async function create(
  s: StepOf<'create'>,
  ctx: Pick<ExecutorContext, 'runtime' | 'event' | 'lifecycle' | 'images'>,
) {
  try {
    const id = await ctx.runtime.create(s.container, s.gpus);
    ctx.lifecycle.created(id);
    const gpus = s.gpus.length ? ` on ${s.gpus.join(',')}` : '';
    ctx.event(
      'container.started',
      `${s.container.name} (${id.slice(0, 12)})${gpus}: ${s.reason}`,
      aboutReplica(s.container.key),
    );
  } catch (err) {
    // The image vanished since we last saw it: forget it so the next round pulls again.
    if (/no such image/i.test(String((err as Error).message))) ctx.images.delete(s.container.spec.image);
    throw err;
  }
}

async function start(
  s: StepOf<'start'>,
  ctx: Pick<ExecutorContext, 'runtime' | 'event' | 'lifecycle' | 'exitCodeOf' | 'restarted' | 'now'>,
) {
  const exitCode = ctx.exitCodeOf(s.id);
  const issuedAtMs = ctx.now();
  ctx.lifecycle.starting(s.id);
  await ctx.runtime.start(s.id);
  // The engine joins the service container's (new) network namespace, so it starts after it.
  ctx.lifecycle.restarting(s.parts ?? []);
  for (const part of s.parts ?? []) await ctx.runtime.restart(part);
  ctx.lifecycle.started([s.id, ...(s.parts ?? [])]);
  if (s.restart) ctx.restarted(s.id, s.key, s.reason, issuedAtMs, exitCode);
  else ctx.event('container.started', `${s.name}: ${s.reason}`, aboutReplica(s.key));
}

async function restart(
  s: StepOf<'restart'>,
  ctx: Pick<ExecutorContext, 'runtime' | 'lifecycle' | 'resetHealth' | 'restarted' | 'now'>,
) {
  const issuedAtMs = ctx.now();
  ctx.lifecycle.restarting([s.id, ...(s.parts ?? [])]);
  await ctx.runtime.restart(s.id);
  ctx.resetHealth(s.id);
  for (const part of s.parts ?? []) {
    await ctx.runtime.restart(part);
    ctx.resetHealth(part);
  }
  ctx.lifecycle.started([s.id, ...(s.parts ?? [])]);
  ctx.restarted(s.id, s.key, s.reason, issuedAtMs, undefined);
}

export const EXECUTORS: Executors = { remove, pull, create, start, restart };

/** Runs one step with its executor. */
export function execute(step: Step, ctx: ExecutorContext): Promise<void> {
  return (EXECUTORS[step.kind] as (s: Step, c: ExecutorContext) => Promise<void>)(step, ctx);
}
