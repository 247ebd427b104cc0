import type {
  ControlMessage,
  DesiredState,
  Hello,
  HostFacts,
  NodePreview,
  PrefetchStatus,
  PreflightResult,
  StatusReport,
} from '../../../proto/gen/fleet/v1/agent.js';

/**
 * What happened on an agent stream, already attributed to the stream's proven identity (`node`).
 * The hub only emits these; recording, assignment and rollout progress happen in the listeners,
 * so the transport never learns about the database or about rollouts.
 *
 * `disconnected` carries why: `closed` when the stream ended or failed, `shutdown` when the
 * control plane itself is stopping (nothing went wrong with the node, so no event is logged).
 */
export type HubEvent =
  | { kind: 'connected'; node: string; atMs: number; hello: Hello }
  | { kind: 'disconnected'; node: string; atMs: number; reason: 'closed' | 'shutdown' }
  | { kind: 'heartbeat'; node: string; atMs: number }
  | { kind: 'acked'; node: string; atMs: number; version: string }
  | { kind: 'reported'; node: string; atMs: number; report: StatusReport }
  | { kind: 'facts'; node: string; atMs: number; facts: HostFacts }
  | {
      kind: 'preflightAnswered';
      node: string;
      atMs: number;
      requestId: string;
      result: PreflightResult;
      preview?: NodePreview;
    }
  | { kind: 'prefetchReported'; node: string; atMs: number; status: PrefetchStatus };

/**
 * Receives every hub event, synchronously and in subscription order. A listener that throws
 * fails the message it was handling (the stream ends with INTERNAL), as a failed write would.
 */
export type HubListener = (event: HubEvent) => void;

/** A node's desired state, as the hub sends it on hello and on every push. */
export interface DesiredStateSource {
  forNode(node: string): DesiredState;
}

/** What the hub offers to those who need to talk to one agent (preflight requests, later rollouts). */
export interface AgentLink {
  isConnected(node: string): boolean;
  /** Writes one message to the node's stream; false when the node has none. */
  send(node: string, message: ControlMessage): boolean;
}
