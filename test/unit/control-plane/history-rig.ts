import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify';
import { createLogger } from '../../../common/log.js';
import { api } from '../../../control-plane/src/api/app.js';
import type { Store } from '../../../control-plane/src/db/store.js';
import { Deployer } from '../../../control-plane/src/deployer.js';
import { RolloutRunner } from '../../../control-plane/src/rollout/runner.js';
import { FakeClock } from './fake-clock.js';
import { injectAs } from './fixtures.js';

/** A playbook over every node, one node per batch, with auto rollback; `tag` changes its content. */
export const rolling = (tag: string, serial = 'serial: 1\n') => `name: web
hosts: all
${serial}rollout: { min_healthy_time: 1s, auto_rollback: true }
services:
  web:
    image: 127.0.0.1:5000/x/web:${tag}
    port: 8080
`;

export interface HistoryRig {
  app: FastifyInstance;
  store: Store;
  clock: FakeClock;
  runner: RolloutRunner;
  online: Set<string>;
  /** `app.inject` with an admin token (named test-admin). */
  inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
  /** `app.inject` with a deployer token named `name` (the actor its applies record). */
  as(name: string): (opts: InjectOptions) => Promise<LightMyRequestResponse>;
  apply(source: string, extra?: object): Promise<LightMyRequestResponse>;
  /** Applies `rolling(tag)` for each tag; every rollout but the last is marked succeeded (the last runs). */
  seed(...tags: string[]): Promise<void>;
  /** Marks the deployment's newest rollout as finished with `state` (as the runner would). */
  finish(state?: 'succeeded' | 'halted'): void;
  close(): Promise<void>;
}

/** The API over a real store, deployer and rollout runner (fake clock; nodes never report healthy). */
export async function historyRig(store: Store, nodes = ['n1', 'n2']): Promise<HistoryRig> {
  const clock = new FakeClock();
  const online = new Set(nodes);
  const push = () => {};
  let deployer: Deployer | undefined;
  const runner = new RolloutRunner({
    store,
    desired: {
      forNode: (n) => deployer!.desired.forNode(n),
      invalidate: (ns) => deployer!.desired.invalidate(ns),
    },
    push,
    isOnline: (n) => online.has(n),
    log: createLogger('test', 'silent'),
    clock,
  });
  deployer = new Deployer(store, { push, rollouts: runner }, { now: () => clock.now() });
  runner.resume();
  for (const name of nodes) store.nodes.upsertHello({ name, labels: {}, agentVersion: 't', facts: {} }, 1);
  const app = Fastify();
  await app.register(api, { store, deployer, rollouts: runner, version: 't', connectedAgents: () => 0 });
  await app.ready();
  const inject = injectAs(app, store);
  const rig: HistoryRig = {
    inject,
    as: (name) => injectAs(app, store, 'deployer', name),
    app,
    store,
    clock,
    runner,
    online,
    apply: (source, extra = {}) =>
      inject({ method: 'POST', url: '/v1/apply', payload: { source, file: 'web.yml', ...extra } }),
    async seed(...tags) {
      for (const [i, tag] of tags.entries()) {
        await rig.apply(rolling(tag));
        if (i < tags.length - 1) rig.finish();
      }
    },
    finish(state = 'succeeded') {
      const r = store.rollouts.latest('web')!;
      store.rollouts.update(r.id, { state, batch: r.batch, reason: '', updatedMs: clock.now() });
    },
    async close() {
      runner.stop();
      await app.close();
      store.close();
    },
  };
  return rig;
}
