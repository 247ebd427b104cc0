import { randomUUID } from 'node:crypto';
import { status as GrpcStatus, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from '../../../common/log.js';
import type {
  AgentMessage,
  ControlMessage,
  DesiredState,
  Hello,
  PreflightResult,
  StatusReport,
} from '../../../proto/gen/fleet/v1/agent.js';
import { ServiceState } from '../../../proto/gen/fleet/v1/agent.js';
import type { Store } from '../db/store.js';
import type { Deployer, DesiredStatePusher } from '../deployer.js';
import type { AgentAuthenticator } from './auth.js';

type AgentStream = ServerDuplexStream<AgentMessage, ControlMessage>;

const stateName: Record<ServiceState, string> = {
  [ServiceState.SERVICE_STATE_UNSPECIFIED]: 'unknown',
  [ServiceState.SERVICE_STATE_PENDING]: 'pending',
  [ServiceState.SERVICE_STATE_RUNNING]: 'running',
  [ServiceState.SERVICE_STATE_FAILED]: 'failed',
  [ServiceState.SERVICE_STATE_PULLING]: 'pulling',
  [ServiceState.SERVICE_STATE_STARTING]: 'starting',
  [ServiceState.SERVICE_STATE_HEALTHY]: 'healthy',
  [ServiceState.SERVICE_STATE_UNHEALTHY]: 'unhealthy',
  [ServiceState.SERVICE_STATE_RESTARTING]: 'restarting',
  [ServiceState.SERVICE_STATE_CRASH_LOOP]: 'crash-loop',
  [ServiceState.UNRECOGNIZED]: 'unknown',
};

/**
 * Holds the open agent streams and speaks the protocol on them:
 *
 *   connect ──auth ok──▶ awaiting hello ──hello(node = identity)──▶ attached ──end/error──▶ detached
 *        └─auth fails──▶ UNAUTHENTICATED      └─anything else or wrong node──▶ PERMISSION_DENIED
 *
 * Once attached, every message is attributed to the stream's identity; a newer stream for the
 * same node replaces the older one.
 */
export class AgentHub implements DesiredStatePusher {
  private readonly streams = new Map<string, AgentStream>();
  /** Heartbeat times not yet written: 10,000 agents beating every 5 s become one transaction a second. */
  private readonly seen = new Map<string, number>();
  private seenTimer: NodeJS.Timeout | undefined;
  /** Plain applies waiting for their nodes to take a revision (see waitTaken). */
  private readonly takers = new Set<() => void>();
  /** `fleet apply --check` requests waiting for an agent's answer, by request id. */
  private readonly waiting = new Map<
    string,
    { node: string; resolve: (r: PreflightResult | undefined) => void }
  >();
  private deployer?: Deployer;

  constructor(
    private readonly store: Store,
    private readonly auth: AgentAuthenticator,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Set once at wiring: the deployer pushes through the hub and the hub reads desired state from it. */
  bind(deployer: Deployer) {
    this.deployer = deployer;
  }

  /**
   * Forgets every stream before the server cuts them, so their close handlers write nothing to a
   * store that is about to close; the nodes are marked disconnected here instead.
   */
  shutdown() {
    this.flushSeen();
    const now = this.now();
    for (const node of this.streams.keys()) this.store.nodes.setConnected(node, false, now);
    this.streams.clear();
    this.abandonPreflights();
  }

  /**
   * Resolves once every given node that is connected has taken its current desired state (acked
   * it) or reported failing preflight checks for it, or after `timeoutMs`. Driven by the acks and
   * reports themselves, so a plain apply learns about held-back nodes without polling.
   */
  waitTaken(nodes: readonly string[], timeoutMs = 3_000): Promise<void> {
    const settled = () =>
      nodes.every((n) => {
        if (!this.streams.has(n) || !this.deployer) return true;
        const want = this.deployer.desiredFor(n).version;
        const pf = this.store.preflight.get(n);
        return this.store.nodes.get(n)?.ackedVersion === want || (pf?.desiredVersion === want && !pf.ok);
      });
    if (settled()) return Promise.resolve();
    return new Promise((resolve) => {
      const taker = () => {
        if (!settled()) return;
        done();
      };
      const done = () => {
        clearTimeout(timer);
        this.takers.delete(taker);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs).unref();
      this.takers.add(taker);
    });
  }

  private noteSeen(node: string, now: number) {
    this.seen.set(node, now);
    this.seenTimer ??= setTimeout(() => this.flushSeen(), 1_000).unref();
  }

  /** Writes the batched heartbeat times in one transaction. */
  flushSeen() {
    clearTimeout(this.seenTimer);
    this.seenTimer = undefined;
    if (this.seen.size === 0) return;
    const batch = [...this.seen];
    this.seen.clear();
    this.store.transaction(() => {
      for (const [node, at] of batch) this.store.nodes.markSeen(node, at);
    });
  }

  private wakeTakers() {
    for (const t of [...this.takers]) t();
  }

  /** Answers "not checked" to preflight requests waiting on `node` (or on every node). */
  private abandonPreflights(node?: string) {
    for (const w of [...this.waiting.values()]) if (!node || w.node === node) w.resolve(undefined);
  }

  /**
   * Asks a connected agent to run its preflight checks on a proposed desired state. Resolves
   * undefined when the node is not connected or does not answer within `timeoutMs`.
   */
  preflight(node: string, desired: DesiredState, timeoutMs = 10_000): Promise<PreflightResult | undefined> {
    const stream = this.streams.get(node);
    if (!stream) return Promise.resolve(undefined);
    const requestId = randomUUID();
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), timeoutMs).unref();
      const done = (r: PreflightResult | undefined) => {
        clearTimeout(timer);
        this.waiting.delete(requestId);
        resolve(r);
      };
      this.waiting.set(requestId, { node, resolve: done });
      stream.write({ msg: { $case: 'preflight', preflight: { requestId, desired } } });
    });
  }

  connectedNodes(): string[] {
    return [...this.streams.keys()].sort();
  }

  push(nodes: readonly string[]) {
    for (const node of nodes) {
      const stream = this.streams.get(node);
      if (stream && this.deployer)
        stream.write({ msg: { $case: 'desired', desired: this.deployer.desiredFor(node) } });
    }
  }

  /** The gRPC handler for AgentService.Connect. */
  readonly connect = (call: AgentStream) => {
    const auth = this.auth.authenticate(call as ServerDuplexStream<unknown, unknown>);
    if (!auth.ok) {
      this.log.warn({ peer: call.getPeer(), reason: auth.message }, 'agent rejected');
      call.emit('error', { code: GrpcStatus.UNAUTHENTICATED, details: auth.message });
      return;
    }
    const node = auth.identity.node;
    const log = this.log.child({ node });
    let attached = false;

    call.on('data', (m: AgentMessage) => {
      try {
        if (!attached) {
          if (m.msg?.$case !== 'hello' || m.msg.hello.node !== node) {
            const claimed = m.msg?.$case === 'hello' ? m.msg.hello.node : m.msg?.$case;
            call.emit('error', {
              code: GrpcStatus.PERMISSION_DENIED,
              details: `first message must be hello from node ${node}, got ${claimed}`,
            });
            return;
          }
          attached = true;
          this.attach(node, m.msg.hello, call, log);
          return;
        }
        this.handle(node, m);
      } catch (err) {
        log.error({ err }, 'agent message failed');
        call.emit('error', { code: GrpcStatus.INTERNAL, details: 'control plane failed to handle message' });
      }
    });
    const detach = () => {
      if (attached && this.streams.get(node) === call) {
        this.streams.delete(node);
        this.abandonPreflights(node);
        this.store.nodes.setConnected(node, false, this.now());
        this.store.events.add({
          atMs: this.now(),
          node,
          kind: 'node.disconnected',
          message: 'stream closed',
        });
        log.info('agent disconnected');
      }
    };
    call.on('end', () => {
      detach();
      call.end();
    });
    call.on('error', detach);
    call.on('cancelled', detach);
    call.on('close', detach);
  };

  private attach(node: string, hello: Hello, call: AgentStream, log: Logger) {
    const previous = this.streams.get(node);
    this.streams.set(node, call);
    if (previous && previous !== call) previous.end();
    this.store.transaction(() => {
      this.store.nodes.upsertHello(
        { name: node, labels: hello.labels, agentVersion: hello.agentVersion, facts: hello.facts ?? {} },
        this.now(),
      );
      this.store.events.add({
        atMs: this.now(),
        node,
        kind: 'node.connected',
        message: `agent ${hello.agentVersion}`,
      });
    });
    this.deployer?.syncNode(node);
    log.info({ labels: hello.labels, version: hello.agentVersion }, 'agent connected');
    this.push([node]);
  }

  private handle(node: string, m: AgentMessage) {
    const now = this.now();
    switch (m.msg?.$case) {
      case 'heartbeat':
        this.noteSeen(node, now);
        return;
      case 'ack':
        this.store.nodes.setAcked(node, m.msg.ack.desiredVersion);
        this.wakeTakers();
        return;
      case 'status':
        this.recordStatus(node, m.msg.status, now);
        if (m.msg.status.preflight) this.wakeTakers();
        return;
      case 'facts': {
        const facts = m.msg.facts;
        this.store.transaction(() => {
          this.store.nodes.markSeen(node, now);
          this.store.facts.record(node, facts, now);
        });
        return;
      }
      case 'preflightResult': {
        const { requestId, result } = m.msg.preflightResult;
        const waiter = this.waiting.get(requestId);
        if (waiter && waiter.node === node && result) waiter.resolve(result);
        return;
      }
      case 'hello':
        throw new Error('hello sent twice on one stream');
      default:
        return;
    }
  }

  /**
   * Stores a node's report, keeping only what concerns deployments assigned to that node: a node
   * cannot write status rows or events into another deployment's view.
   */
  private recordStatus(node: string, report: StatusReport, now: number) {
    const mine = new Set(this.store.deployments.nodeAssignments(node).map((a) => a.deployment));
    report = {
      ...report,
      services: report.services.filter((s) => mine.has(s.deployment)),
      events: report.events.filter((e) => e.deployment === '' || mine.has(e.deployment)),
    };
    this.store.transaction(() => {
      this.store.nodes.markSeen(node, now);
      this.store.status.replaceNode(
        node,
        report.services.map((s) => ({
          deployment: s.deployment,
          service: s.service,
          revision: s.revision,
          state: stateName[s.state] ?? 'unknown',
          ready: s.readyReplicas,
          desired: s.desiredReplicas,
          lastError: s.lastError,
          progress: s.progress,
          containers: s.containers.map((c) => ({
            id: c.id,
            name: c.name,
            replica: c.replica,
            state: c.state,
            specHash: c.specHash,
            createdAtMs: c.createdAtMs,
            image: c.image,
            health: c.health,
            restartCount: c.restartCount,
            ...(c.lastExitCode !== undefined ? { lastExitCode: c.lastExitCode } : {}),
            lastProbeError: c.lastProbeError,
            gpus: c.gpus,
            outgoing: c.outgoing,
          })),
          updatedMs: now,
        })),
      );
      if (report.preflight) this.store.preflight.record(node, report.preflight);
      for (const e of report.events) {
        this.store.events.add({
          atMs: e.atMs || now,
          node,
          deployment: e.deployment,
          service: e.service,
          kind: e.kind,
          message: e.message,
        });
      }
    });
  }
}
