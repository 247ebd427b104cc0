/**
 * At most one unanswered desired state in flight per node; pushes made meanwhile wait and
 * coalesce, and the newest state goes out when the node answers (latest wins, as an xDS server
 * holds one unacknowledged response per type). Five applies in a row to a slow node cost one
 * push in flight plus one, not five.
 *
 * Per node:
 *
 *   idle ──push──▶ in flight(v) ──ack of v, or preflight refused v──▶ idle (a waiting push goes now)
 *                     │ ──push──▶ in flight(v), waiting
 *                     └─ no answer within holdMs ──▶ a waiting push goes anyway (never starves)
 *
 * A closed stream forgets the node: the next hello sends the newest state whatever was in flight.
 */
export class PushWindow {
  private readonly inflight = new Map<string, { version: string; sentAtMs: number; waiting: boolean }>();

  constructor(readonly holdMs = 5_000) {}

  /** True when a push to `node` may be written now; false when it waits (it is remembered). */
  offer(node: string, nowMs: number): boolean {
    const f = this.inflight.get(node);
    if (!f || nowMs - f.sentAtMs >= this.holdMs) return true;
    f.waiting = true;
    return false;
  }

  /** `version` was written to `node`'s stream. */
  sent(node: string, version: string, nowMs: number) {
    this.inflight.set(node, { version, sentAtMs: nowMs, waiting: false });
  }

  /**
   * The node answered `version` (acked it, or its preflight refused it). Returns true when a push
   * waited for that answer and should go now.
   */
  answered(node: string, version: string): boolean {
    const f = this.inflight.get(node);
    if (!f || f.version !== version) return false;
    this.inflight.delete(node);
    return f.waiting;
  }

  /** The node's stream is gone. */
  forget(node: string) {
    this.inflight.delete(node);
  }

  /** Nodes whose waiting push has waited out the hold (their in-flight state got no answer). */
  due(nowMs: number): string[] {
    const out: string[] = [];
    for (const [node, f] of this.inflight) if (f.waiting && nowMs - f.sentAtMs >= this.holdMs) out.push(node);
    return out;
  }

  /** Whether any push is waiting. */
  get waiting(): boolean {
    for (const f of this.inflight.values()) if (f.waiting) return true;
    return false;
  }
}
