import { randomUUID } from 'node:crypto';
import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';
import type { DesiredState, NodePreview, PreflightResult } from '../../../proto/gen/fleet/v1/agent.js';
import type { AgentLink, HubEvent } from './events.js';

/** An agent's answer: its preflight checks, and its preview when one was asked for. */
export interface PreflightAnswer {
  result: PreflightResult;
  preview?: NodePreview;
}

interface Waiter {
  node: string;
  resolve: (r: PreflightAnswer | undefined) => void;
}

/**
 * `fleet apply --check` asks agents over their streams and waits for the answer: this correlates
 * each request id with its answer. It sends through the hub's `AgentLink` and learns answers and
 * disconnects from the hub's events, so the hub itself keeps no request state.
 */
export class PreflightRequests {
  private readonly waiting = new Map<string, Waiter>();

  constructor(
    private readonly link: AgentLink,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Asks a connected agent to run its preflight checks on a proposed desired state and, when
   * `previewDeployment` names one of its deployments (`--check --diff`), to preview what taking
   * it would change there. Resolves undefined when the node is not connected or does not answer
   * within `timeoutMs`.
   */
  ask(
    node: string,
    desired: DesiredState,
    timeoutMs = 10_000,
    previewDeployment = '',
  ): Promise<PreflightAnswer | undefined> {
    if (!this.link.isConnected(node)) return Promise.resolve(undefined);
    const requestId = randomUUID();
    return new Promise((resolve) => {
      let timer: TimerHandle;
      const done = (r: PreflightAnswer | undefined) => {
        this.clock.clearTimeout(timer);
        this.waiting.delete(requestId);
        resolve(r);
      };
      timer = this.clock.setTimeout(() => done(undefined), timeoutMs);
      this.waiting.set(requestId, { node, resolve: done });
      const preflight = { requestId, desired, previewDeployment };
      if (!this.link.send(node, { msg: { $case: 'preflight', preflight } })) done(undefined);
    });
  }

  /** The hub listener: an answer resolves its request (only from the node asked); a lost stream answers "not checked". */
  readonly onHubEvent = (e: HubEvent) => {
    if (e.kind === 'preflightAnswered') {
      const waiter = this.waiting.get(e.requestId);
      if (waiter && waiter.node === e.node)
        waiter.resolve({ result: e.result, ...(e.preview ? { preview: e.preview } : {}) });
    } else if (e.kind === 'disconnected') {
      for (const w of [...this.waiting.values()]) if (w.node === e.node) w.resolve(undefined);
    }
  };
}
