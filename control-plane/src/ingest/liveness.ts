import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';
import type { HubEvent } from '../grpc/events.js';

/** One transition of a node's liveness, with the reason an operator reads in the event log. */
export interface LivenessChange {
  node: string;
  online: boolean;
  /** When the transition was decided. */
  atMs: number;
  /** When the node was last heard from (the transition time for an online one). */
  lastSeenMs: number;
  /** e.g. "stream closed", "silent for 5.5 s", "stream opened". */
  reason: string;
}

export type LivenessListener = (change: LivenessChange) => void;

/**
 * Whether a node can be reached now: what the rollout engine asks to count a node of its batch
 * as unreachable, and what `GET /v1/nodes` shows as `connected`. Answers from memory.
 */
export interface Liveness {
  isOnline(node: string): boolean;
  /** Called synchronously on every transition; returns the unsubscribe. */
  onChange(listener: LivenessListener): () => void;
}

/**
 * How long an open stream may stay silent before its node counts offline. Agents beat every 2 s
 * by default (agent/src/connection.ts `DEFAULT_HEARTBEAT_MS`): a node is offline once two beats
 * are missing and the third is 1.5 s late, so one late or lost beat never flaps it, and a frozen
 * agent (SIGSTOP, a hung host whose kernel still holds the TCP connection) is offline 3.5–5.5 s
 * after it froze: within the promised 6 s, with 0.5 s to spare for a beat in flight or a timer
 * firing late. Heartbeats rather than gRPC keepalive, because they prove the agent's event loop
 * runs (not only its HTTP/2 stack), and each costs one O(1) map update here.
 */
export const DEFAULT_SILENCE_MS = 5_500;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Liveness from the hub's events, held in memory (nothing is written per beat):
 *
 *            hello (stream opened)                    any message (heard from again)
 *   offline ───────────────────────▶ online ◀──────────────────────────────── silent
 *      ▲                              │  │                                        │
 *      └────── stream closed (at once)┘  └── no message for silenceMs ───────────▶┘
 *      └────────────────────────────── stream closed ─────────────────────────────┘
 *
 * Online nodes sit in one Map in last-heard order: a message deletes and re-inserts its node
 * (O(1)), so the head is always the next node to fall silent and a single timer, armed for the
 * head's deadline, finds every silent node exactly at its bound without scanning the fleet.
 * A control-plane shutdown forgets nodes without a transition (nothing went wrong with them).
 */
export class LivenessTracker implements Liveness {
  /** Online nodes → when last heard from, oldest first. */
  private readonly heard = new Map<string, number>();
  /** Nodes whose stream is open but which went silent → when last heard from. */
  private readonly silent = new Map<string, number>();
  private readonly listeners: LivenessListener[] = [];
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock = systemClock,
    readonly silenceMs = DEFAULT_SILENCE_MS,
  ) {}

  isOnline(node: string): boolean {
    return this.heard.has(node);
  }

  /** How many nodes are online now. */
  onlineCount(): number {
    return this.heard.size;
  }

  onChange(listener: LivenessListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** The hub listener: every message is a sign of life; a closed stream is offline at once. */
  readonly onHubEvent = (e: HubEvent) => {
    if (e.kind === 'connected') return this.heardFrom(e.node, true);
    if (e.kind !== 'disconnected') return this.heardFrom(e.node, false);
    if (e.reason === 'closed') return this.lost(e.node);
    this.heard.delete(e.node);
    this.silent.delete(e.node);
  };

  /** Stops the timer (the process is stopping). */
  stop() {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private heardFrom(node: string, opened: boolean) {
    const now = this.clock.now();
    const wasOnline = this.heard.delete(node);
    this.heard.set(node, now);
    if (wasOnline) return;
    const silentSince = this.silent.get(node);
    this.silent.delete(node);
    this.arm();
    const reason =
      opened || silentSince === undefined
        ? 'stream opened'
        : `heard from again after ${seconds(now - silentSince)} of silence`;
    this.emit({ node, online: true, atMs: now, lastSeenMs: now, reason });
  }

  private lost(node: string) {
    this.silent.delete(node);
    if (!this.heard.delete(node)) return;
    const now = this.clock.now();
    this.emit({ node, online: false, atMs: now, lastSeenMs: now, reason: 'stream closed' });
  }

  /** Arms the one timer for the head's deadline, unless it is armed already. */
  private arm() {
    if (this.timer !== undefined) return;
    const head = this.heard.values().next();
    if (head.done) return;
    const wait = Math.max(0, head.value + this.silenceMs - this.clock.now());
    this.timer = this.clock.setTimeout(() => this.sweep(), wait);
  }

  /** Moves every node silent for `silenceMs` or longer to silent: they are at the head. */
  private sweep() {
    this.timer = undefined;
    const now = this.clock.now();
    try {
      for (const [node, at] of this.heard) {
        if (now - at < this.silenceMs) break;
        this.heard.delete(node);
        this.silent.set(node, at);
        const reason = `silent for ${seconds(now - at)}`;
        this.emit({ node, online: false, atMs: now, lastSeenMs: at, reason });
      }
    } finally {
      this.arm(); // a listener that throws must not stop silence detection for the fleet
    }
  }

  private emit(change: LivenessChange) {
    for (const listener of [...this.listeners]) listener(change);
  }
}
