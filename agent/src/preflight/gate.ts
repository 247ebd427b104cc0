import type { Logger } from '../../../common/log.js';
import type { DesiredState, PreflightResult } from '../../../proto/gen/fleet/v1/agent.js';

export interface GateDeps {
  check: (d: DesiredState) => Promise<PreflightResult>;
  /** Adopts a desired state that passed (persist, then converge). */
  apply: (d: DesiredState) => void;
  /** The result changed: the next status report should carry it. */
  changed: () => void;
  log: Logger;
  retryMs?: number;
}

/**
 * Stands between a new desired state and the reconciler. A state whose checks fail is held, not
 * applied: what runs keeps running, the failure is reported, and the checks run again every
 * `retryMs` (a model file copied in later lets the rollout proceed by itself). A newer state
 * replaces the held one.
 *
 *   offer ──checks pass──▶ applied
 *     │
 *     └─checks fail──▶ held ──retry──▶ (checks again) ; offer(newer) replaces it
 */
export class PreflightGate {
  private held: DesiredState | undefined;
  private result: PreflightResult | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly deps: GateDeps) {}

  /** The latest result, for status reports. */
  latest(): PreflightResult | undefined {
    return this.result;
  }

  get heldVersion(): string | undefined {
    return this.held?.version;
  }

  offer(d: DesiredState) {
    if (this.held?.version === d.version) return;
    this.held = d;
    clearTimeout(this.timer);
    void this.run(d);
  }

  /** The control plane went back to what already runs: nothing is held any more. */
  drop() {
    this.held = undefined;
    clearTimeout(this.timer);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async run(d: DesiredState) {
    let r: PreflightResult;
    try {
      r = await this.deps.check(d);
    } catch (err) {
      r = {
        desiredVersion: d.version,
        ok: false,
        checks: [
          {
            name: 'preflight',
            ok: false,
            message: `checks could not run: ${(err as Error).message}`,
            service: '',
          },
        ],
        checkedAtMs: Date.now(),
      };
    }
    if (this.stopped || this.held !== d) return; // superseded while checking
    this.result = r;
    if (r.ok) {
      // Apply first: the report trigger that follows merges into the run the new state starts.
      this.held = undefined;
      this.deps.apply(d);
      this.deps.changed();
      return;
    }
    this.deps.changed();
    const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.message}`);
    this.deps.log.warn({ version: d.version.slice(0, 12), failed }, 'preflight failed; keeping what runs');
    this.timer = setTimeout(() => void this.run(d), this.deps.retryMs ?? 30_000);
    this.timer.unref();
  }
}
