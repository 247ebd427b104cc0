import type { RolloutReply } from '../../../../control-plane/src/api/client.js';
import type { DeploymentDetail } from '../../../../control-plane/src/api/schemas.js';

type RolloutNode = RolloutReply['nodes'][number];
type DetailNode = DeploymentDetail['nodes'][number];
type Service = DetailNode['services'][number];

export const NOW = 1_000_000;

/** A rollout of revision 4 over three nodes, one a batch, in batch 2 (from 0: 1); override at will. */
export function rolloutOf(o: Partial<RolloutReply> = {}, nodes?: Partial<RolloutNode>[]): RolloutReply {
  const base: RolloutNode[] = ['gpu-1', 'gpu-2', 'gpu-3'].map((node, batch) => ({
    node,
    batch,
    state: 'waiting',
    pushedMs: 0,
    healthySinceMs: 0,
    reason: '',
  }));
  return {
    id: 7,
    revision: 4,
    fromRevision: 3,
    stableRevision: 3,
    kind: 'apply',
    state: 'running',
    batch: 1,
    batches: 3,
    reason: '',
    startedMs: NOW - 60_000,
    updatedMs: NOW - 1_000,
    policy: { minHealthyMs: 10_000, healthyDeadlineMs: 300_000, maxFailPercentage: 0, autoRollback: true },
    nodes: base.map((n, i) => ({ ...n, ...nodes?.[i] })),
    ...o,
  };
}

export function service(o: Partial<Service> = {}): Service {
  return {
    service: 'telechat',
    revision: 4,
    state: 'starting',
    ready: 0,
    desired: 1,
    lastError: '',
    progress: '',
    containers: [],
    updatedMs: NOW - 500,
    ...o,
  };
}

export function detailNode(node: string, o: Partial<DetailNode> = {}): DetailNode {
  return { node, connected: true, revision: 4, acked: true, services: [], preflight: null, ...o };
}

/** The deployment holding `rollout`, with `nodes` as given (each defaults to connected, acked, no report). */
export function detailOf(rollout: RolloutReply | null, nodes: DetailNode[]): DeploymentDetail {
  return {
    name: 'telechat',
    revision: 4,
    hash: 'ab'.repeat(32),
    file: 'prod.yaml',
    createdMs: NOW - 60_000,
    services: ['telechat'],
    ready: false,
    nodes,
    rollout,
    events: [],
  };
}
