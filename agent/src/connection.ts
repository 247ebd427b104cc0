import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/log.js';
import {
  type AgentMessage,
  AgentServiceClient,
  type ControlMessage,
  type DesiredState,
  type EnrollResponse,
  type Hello,
  type HostFacts,
  type Prefetch,
  type PrefetchStatus,
  type PreflightResponse,
  type StatusReport,
} from '../../proto/gen/fleet/v1/agent.js';
import { Backoff } from './backoff.js';
import { dialOptions } from './enroll/client.js';

/** The agent's answer to a preflight request: its checks, and the preview when one was asked for. */
export type PreflightAnswer = Omit<PreflightResponse, 'requestId'>;

export interface ConnectionOptions {
  address: string;
  /** Mutual TLS with the node's certificate (enroll/client.ts `mtlsCredentials`). */
  credentials: grpc.ChannelCredentials;
  node: string;
  log: Logger;
  hello: () => Promise<Hello>;
  onDesired: (d: DesiredState) => void;
  /** Called on every (re)connect; returns the report to send first. */
  latestReport: () => StatusReport | undefined;
  /** Called on every (re)connect: the agent's latest facts go out right after hello. */
  onConnect?: () => void;
  /**
   * `fleet apply --check`: run the checks on a proposed state, apply nothing; with `--diff` the
   * control plane names a deployment to preview as well.
   */
  onPreflight?: (desired: DesiredState, previewDeployment: string) => Promise<PreflightAnswer>;
  /** A rollout started: pull these images in the background (never touching a container). */
  onPrefetch?: (p: Prefetch) => void;
  heartbeatMs?: number;
  backoff?: Backoff;
  /** The redial jitter's source (tests pin it). */
  random?: () => number;
  /**
   * Extra gRPC channel options. The rollout benchmark's simulated agents pass
   * `grpc.use_local_subchannel_pool` so each opens its own HTTP/2 connection, as real hosts do
   * (grpc-js otherwise shares one connection among clients with the same target and options).
   */
  channelOptions?: grpc.ChannelOptions;
}

/**
 * How often an open stream carries a heartbeat. The control plane counts a node offline after
 * 5.5 s without a message (control-plane/src/ingest/liveness.ts `DEFAULT_SILENCE_MS`): with a
 * 2 s beat that is two missed beats and a late third, so a late beat never flaps a node and a
 * frozen agent is seen offline within 6 s. 10,000 agents at this rate are 5,000 tiny messages
 * a second, each an O(1) map update on the control plane. A longer `--heartbeat` needs a longer
 * `fleet server --agent-silence` (about 2.75 beats), or nodes flap.
 */
export const DEFAULT_HEARTBEAT_MS = 2_000;

/**
 * The agent's end of the stream. The agent always dials; on any failure it redials with jittered
 * exponential backoff, forever. Nothing here decides what runs: the reconciler does, from the
 * persisted desired state, whether or not this connection is up.
 *
 *   dialing ──stream open + hello sent──▶ open ──error/end──▶ waiting(backoff) ──▶ dialing
 */
export class Connection {
  private client: AgentServiceClient;
  private stream: grpc.ClientDuplexStream<AgentMessage, ControlMessage> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private redial: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff: Backoff;
  /** The redial window the control plane asked for in its welcome (0 until one arrives). */
  private windowMs = 0;
  connected = false;
  /** When a status report last went out on an open stream (ms since epoch; 0 = never). */
  lastReportAtMs = 0;

  constructor(private readonly opts: ConnectionOptions) {
    this.backoff = opts.backoff ?? new Backoff(250, 10_000);
    this.client = this.newClient(opts.credentials);
  }

  private newClient(credentials: grpc.ChannelCredentials) {
    return new AgentServiceClient(this.opts.address, credentials, {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5_000,
      ...dialOptions(this.opts.address),
      ...this.opts.channelOptions,
    });
  }

  /**
   * Switches to new credentials (a renewed certificate) without restarting the agent: a new
   * channel, and the open stream ends so it redials on it at once.
   */
  useCredentials(credentials: grpc.ChannelCredentials) {
    const old = this.client;
    this.client = this.newClient(credentials);
    this.backoff.reset();
    this.stream?.cancel();
    old.close();
  }

  /** `Renew` over the current mutual-TLS channel: a new certificate for this node's key. */
  renew(csrPem: string, timeoutMs = 10_000): Promise<EnrollResponse> {
    return new Promise((resolve, reject) =>
      this.client.renew({ csrPem }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  }

  start() {
    void this.dial();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.redial);
    clearInterval(this.heartbeat);
    this.stream?.cancel();
    this.client.close();
  }

  /** Sends a report now when connected; otherwise the latest one goes out on reconnect. */
  sendStatus(report: StatusReport): boolean {
    const sent = this.send({ msg: { $case: 'status', status: report } });
    if (sent) this.lastReportAtMs = Date.now();
    return sent;
  }

  /**
   * Acknowledges a desired state once it passed preflight and was persisted (not on receipt), so
   * the control plane's "acked" means "this node took it".
   */
  ack(desiredVersion: string) {
    this.send({ msg: { $case: 'ack', ack: { desiredVersion } } });
  }

  /** Sends facts now when connected; `onConnect` re-sends the latest on reconnect. */
  sendFacts(facts: HostFacts) {
    this.send({ msg: { $case: 'facts', facts } });
  }

  /** Where a prefetch stands; false when not connected (the control plane asks again on reconnect). */
  sendPrefetchStatus(prefetchStatus: PrefetchStatus): boolean {
    return this.send({ msg: { $case: 'prefetchStatus', prefetchStatus } });
  }

  private send(m: AgentMessage): boolean {
    if (!this.connected || !this.stream) return false;
    this.stream.write(m);
    return true;
  }

  private async dial() {
    if (this.stopped) return;
    const log = this.opts.log;
    const md = new grpc.Metadata();
    // Who this agent believes it is; the control plane refuses it unless the certificate agrees.
    md.set('x-fleet-node', this.opts.node);
    let hello: Hello;
    try {
      hello = await this.opts.hello();
    } catch (err) {
      log.warn({ err }, 'collecting hello failed');
      return this.retry();
    }
    if (this.stopped) return;
    const stream = this.client.connect(md);
    this.stream = stream;
    let opened = false;
    stream.on('data', (m: ControlMessage) => {
      if (m.msg?.$case === 'welcome') {
        this.windowMs = m.msg.welcome.reconnectWindowMs;
        return;
      }
      if (m.msg?.$case === 'preflight') {
        const { requestId, desired, previewDeployment } = m.msg.preflight;
        const answer = (a: PreflightAnswer) =>
          this.send({ msg: { $case: 'preflightResult', preflightResult: { requestId, ...a } } });
        if (desired && this.opts.onPreflight) {
          this.opts.onPreflight(desired, previewDeployment).then(answer, (err: Error) =>
            answer({
              result: {
                desiredVersion: desired.version,
                ok: false,
                checkedAtMs: Date.now(),
                checks: [{ name: 'preflight', ok: false, message: err.message, service: '' }],
              },
            }),
          );
        }
        return;
      }
      if (m.msg?.$case === 'prefetch') {
        this.opts.onPrefetch?.(m.msg.prefetch);
        return;
      }
      if (m.msg?.$case !== 'desired') return;
      if (!opened) {
        // Connected only once the control plane answered: a stream to a server that is down
        // "accepts" writes until it fails, and reports (with their events) would vanish into it.
        opened = true;
        this.backoff.reset();
        log.info({ address: this.opts.address }, 'connected to control plane');
        this.connected = true;
        const report = this.opts.latestReport();
        if (report) this.sendStatus(report);
        this.opts.onConnect?.();
        this.heartbeat = setInterval(() => {
          // A heartbeat is a report of liveness: the lag metric measures the stream, not change.
          if (this.send({ msg: { $case: 'heartbeat', heartbeat: { sentAtMs: Date.now() } } }))
            this.lastReportAtMs = Date.now();
        }, this.opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
      }
      this.opts.onDesired(m.msg.desired);
    });
    stream.on('error', (err: grpc.ServiceError) => {
      if (err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED) {
        log.error({ code: err.code, details: err.details }, 'control plane refused this agent');
      } else {
        log.warn({ code: err.code, details: err.details }, 'stream failed');
      }
    });
    // grpc-js ends a call with 'status' (always) and 'error' (non-OK), not always with 'close':
    // whichever comes first ends this stream and schedules the redial, once.
    let ended = false;
    const end = () => {
      if (ended || this.stream !== stream) return;
      ended = true;
      this.connected = false;
      clearInterval(this.heartbeat);
      this.retry();
    };
    stream.on('status', end);
    stream.on('close', end);
    stream.on('error', end);
    stream.write({ msg: { $case: 'hello', hello } });
  }

  /**
   * Schedules the next dial: the backoff, or, once a control plane sized a window for its fleet,
   * a random time up to the larger of the two (full jitter), so 10,000 agents that lost it at the
   * same instant come back spread over the window rather than in its first second.
   */
  private retry() {
    if (this.stopped) return;
    const backoff = this.backoff.next();
    const delay =
      this.windowMs > 0
        ? Math.round((this.opts.random ?? Math.random)() * Math.max(this.windowMs, backoff))
        : backoff;
    this.opts.log.info({ delayMs: delay, attempt: this.backoff.attempts }, 'redialing control plane');
    clearTimeout(this.redial);
    this.redial = setTimeout(() => void this.dial(), delay);
  }
}
