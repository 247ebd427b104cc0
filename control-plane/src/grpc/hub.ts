import { status as GrpcStatus, type ServerDuplexStream } from '@grpc/grpc-js';
import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import type { AgentMessage, ControlMessage, Hello } from '../../../proto/gen/fleet/v1/agent.js';
import { type AgentAuthenticator, type AuthResult, authStatus } from './auth.js';
import { encodedDesired } from './encoded.js';
import type { AgentLink, DesiredStateSource, HubEvent, HubListener } from './events.js';
import { PushWindow } from './push-window.js';

type AgentStream = ServerDuplexStream<AgentMessage, ControlMessage>;

/** What the hub is given at wiring: narrow pieces, never the deployer or the store. */
export interface HubDeps {
  auth: AgentAuthenticator;
  /** What to send a node on hello and on every push; the hub never computes it. */
  desired: DesiredStateSource;
  log: Logger;
  clock?: Clock;
  /**
   * A certificate that named `node` was turned away (another role, key or node than it may act as):
   * told apart from stream events, so no listener mistakes it for the node being heard from.
   */
  onRefused?: (r: { node: string; atMs: number; message: string }) => void;
  /** How long an unanswered push holds newer ones back (tests shorten it). */
  pushHoldMs?: number;
  /** The redial window to tell each agent on hello (see reconnect.ts); none is sent without it. */
  reconnectWindowMs?: () => number;
}

/**
 * Holds the open agent streams and speaks the protocol on them, nothing more:
 *
 *   connect ──auth ok──▶ awaiting hello ──hello(node = identity)──▶ attached ──end/error──▶ detached
 *        └─auth fails──▶ UNAUTHENTICATED /    └─anything else or wrong node──▶ PERMISSION_DENIED
 *                        PERMISSION_DENIED (auth.ts `authStatus`)
 *
 *   attached: heartbeat, ack, status, facts, preflight answer, prefetch status ──▶ one HubEvent each
 *             a second hello ──▶ INTERNAL (the stream ends)
 *
 * Once attached, every message is attributed to the stream's identity and emitted as a
 * `HubEvent`; a newer stream for the same node replaces the older one. On hello the hub emits
 * `connected` (listeners record the node and its assignments) and then sends the node its desired
 * state. Recording, heartbeat batching, preflight correlation and rollout progress all listen.
 */
export class AgentHub implements AgentLink {
  private readonly streams = new Map<string, AgentStream>();
  private readonly listeners: HubListener[] = [];
  private readonly clock: Clock;
  private readonly window: PushWindow;
  private sweep: TimerHandle | undefined;
  private closed = false;

  constructor(private readonly deps: HubDeps) {
    this.clock = deps.clock ?? systemClock;
    this.window = new PushWindow(deps.pushHoldMs);
  }

  /** Adds a listener; listeners run in the order they subscribed. Returns the unsubscribe. */
  subscribe(listener: HubListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /**
   * Forgets every stream before the server cuts them, so their close handlers (and any message
   * still in flight) reach no listener writing to a store that is about to close; each node is
   * announced `disconnected` with reason `shutdown` instead.
   */
  shutdown() {
    this.closed = true;
    if (this.sweep !== undefined) this.clock.clearTimeout(this.sweep);
    const atMs = this.clock.now();
    const nodes = [...this.streams.keys()];
    this.streams.clear();
    for (const node of nodes) this.emit({ kind: 'disconnected', node, atMs, reason: 'shutdown' });
  }

  connectedNodes(): string[] {
    return [...this.streams.keys()].sort();
  }

  isConnected(node: string): boolean {
    return this.streams.has(node);
  }

  send(node: string, message: ControlMessage): boolean {
    const stream = this.streams.get(node);
    if (!stream) return false;
    stream.write(message);
    return true;
  }

  /**
   * Sends each connected node among `nodes` its current desired state: the same encoded bytes to
   * every node that shares it, and never a second state while the first is unanswered (it goes
   * when the node answers; see `PushWindow`).
   */
  push(nodes: readonly string[]) {
    const now = this.clock.now();
    for (const node of nodes) {
      const stream = this.streams.get(node);
      if (!stream) continue;
      if (!this.window.offer(node, now)) {
        this.sweepLater();
        continue;
      }
      const state = this.deps.desired.forNode(node);
      // The service's serializer passes pre-encoded bytes through (grpc/encoded.ts).
      stream.write(encodedDesired(state) as unknown as ControlMessage);
      this.window.sent(node, state.version, now);
    }
  }

  /** Pushes held back by an unanswered one go once the hold ends, whatever the node says. */
  private sweepLater() {
    this.sweep ??= this.clock.setTimeout(() => {
      this.sweep = undefined;
      if (this.closed) return;
      this.push(this.window.due(this.clock.now()));
      if (this.window.waiting) this.sweepLater();
    }, this.window.holdMs / 2);
  }

  /** A node answered `version`: a push that waited for it goes now. */
  private answered(node: string, version: string) {
    if (this.window.answered(node, version)) this.push([node]);
  }

  /** The gRPC handler for AgentService.Connect. */
  readonly connect = (call: AgentStream) => {
    const auth = this.deps.auth.authenticate(call);
    if (!auth.ok) {
      this.refused(call.getPeer(), auth);
      call.emit('error', { code: authStatus(auth.reason), details: auth.message });
      return;
    }
    const node = auth.identity.node;
    const log = this.deps.log.child({ node });
    let attached = false;

    call.on('data', (m: AgentMessage) => {
      if (this.closed) return;
      try {
        if (attached) return this.handle(node, m);
        if (m.msg?.$case !== 'hello' || m.msg.hello.node !== node) return this.refuseFirst(call, node, m);
        attached = true;
        this.attach(node, m.msg.hello, call, log);
      } catch (err) {
        log.error({ err }, 'agent message failed');
        call.emit('error', { code: GrpcStatus.INTERNAL, details: 'control plane failed to handle message' });
      }
    });
    const detach = () => {
      if (!attached || this.streams.get(node) !== call) return;
      this.streams.delete(node);
      this.window.forget(node);
      // No message to fail here (the stream is gone): a listener that throws (the recorder on a
      // full disk) is logged, never an uncaught exception that takes the control plane down.
      try {
        this.emit({ kind: 'disconnected', node, atMs: this.clock.now(), reason: 'closed' });
      } catch (err) {
        log.error({ err }, 'recording the disconnect failed');
      }
      log.info('agent disconnected');
    };
    call.on('end', () => {
      detach();
      call.end();
    });
    call.on('error', detach);
    call.on('cancelled', detach);
    call.on('close', detach);
  };

  /**
   * Logs a refused call; when a certificate named a node, a `refused` event too (an unidentified
   * prober gets a log line, not a row per attempt).
   */
  refused(peer: string, auth: Extract<AuthResult, { ok: false }>, rpc = 'Connect') {
    this.deps.log.warn(
      { peer, rpc, reason: auth.reason, node: auth.node, err: auth.message },
      'agent refused',
    );
    if (auth.node)
      this.deps.onRefused?.({ node: auth.node, atMs: this.clock.now(), message: `${rpc}: ${auth.message}` });
  }

  /** The first message was not a hello from the stream's own node: the stream ends here. */
  private refuseFirst(call: AgentStream, node: string, m: AgentMessage) {
    const claimed = m.msg?.$case === 'hello' ? m.msg.hello.node : m.msg?.$case;
    const details = `first message must be hello from node ${node}, got ${claimed}`;
    this.refused(call.getPeer(), { ok: false, reason: 'node-mismatch', message: details, node });
    call.emit('error', { code: GrpcStatus.PERMISSION_DENIED, details });
  }

  private attach(node: string, hello: Hello, call: AgentStream, log: Logger) {
    const previous = this.streams.get(node);
    this.streams.set(node, call);
    if (previous && previous !== call) previous.end();
    this.window.forget(node);
    this.emit({ kind: 'connected', node, atMs: this.clock.now(), hello });
    log.info({ labels: hello.labels, version: hello.agentVersion }, 'agent connected');
    const windowMs = this.deps.reconnectWindowMs?.();
    if (windowMs !== undefined)
      call.write({ msg: { $case: 'welcome', welcome: { reconnectWindowMs: windowMs } } });
    this.push([node]);
  }

  private handle(node: string, m: AgentMessage) {
    const atMs = this.clock.now();
    switch (m.msg?.$case) {
      case 'heartbeat':
        return this.emit({ kind: 'heartbeat', node, atMs });
      case 'ack':
        this.emit({ kind: 'acked', node, atMs, version: m.msg.ack.desiredVersion });
        return this.answered(node, m.msg.ack.desiredVersion);
      case 'status': {
        const { preflight } = m.msg.status;
        this.emit({ kind: 'reported', node, atMs, report: m.msg.status });
        if (preflight && !preflight.ok) this.answered(node, preflight.desiredVersion);
        return;
      }
      case 'facts':
        return this.emit({ kind: 'facts', node, atMs, facts: m.msg.facts });
      case 'preflightResult': {
        const { requestId, result, preview } = m.msg.preflightResult;
        if (result) this.emit({ kind: 'preflightAnswered', node, atMs, requestId, result, preview });
        return;
      }
      case 'prefetchStatus':
        return this.emit({ kind: 'prefetchReported', node, atMs, status: m.msg.prefetchStatus });
      case 'hello':
        throw new Error('hello sent twice on one stream');
      default:
        return;
    }
  }

  /**
   * Every listener hears the event even when one before it throws (the recorder failing on a full
   * disk must not keep liveness or rollouts from hearing it); then the first error is thrown, so the
   * message being handled fails as before.
   */
  private emit(event: HubEvent) {
    const errors: unknown[] = [];
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}
