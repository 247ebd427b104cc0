/**
 * Renews the node's certificate while the agent runs, at the moment `renew.ts` draws (70–90% of its
 * life), over the mutual-TLS channel the certificate itself authenticates; then hands the new
 * material to the connection, which opens a new channel with it (no restart).
 *
 *   waiting ──renewAt──▶ renewing ──ok──▶ saved, connection switched ──▶ waiting (next certificate)
 *                          └─ failed ──▶ retry in min(30 s, a tenth of what is left) ──▶ renewing
 *   expired ──▶ an error in the log with the way back (a new join token); the stream is refused
 */
import type { Logger } from '../../../common/log.js';
import type { EnrollResponse } from '../../../proto/gen/fleet/v1/agent.js';
import type { AgentTls } from './client.js';
import { createCsr, type NodeKey, saveCertificate } from './keys.js';
import { decideRenewal, scheduleRenewal, validityOf } from './renew.js';

/**
 * The shortest wait between two renewals. Certificates are backdated by five minutes, so with a
 * very short lifetime (the test knob) a fresh certificate can already be due: this keeps that from
 * becoming a tight loop against the control plane.
 */
export const MIN_RENEW_GAP_MS = 5_000;

export interface RenewerDeps {
  node: string;
  key: NodeKey;
  tlsDir: string;
  /** The certificate in use now. */
  tls: AgentTls;
  /** Renew over the current channel (connection.ts `renew`). */
  renew: (csrPem: string) => Promise<EnrollResponse>;
  /** Start using the renewed certificate (connection.ts `useCredentials`). */
  switchTo: (tls: AgentTls) => void;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

export class Renewer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private tls: AgentTls;
  /** How many renewals succeeded (for tests and logs). */
  renewals = 0;

  constructor(private readonly deps: RenewerDeps) {
    this.tls = deps.tls;
  }

  start() {
    this.plan(0);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private get now() {
    return (this.deps.now ?? Date.now)();
  }

  /** Looks at the current certificate and waits, renews, or reports that it expired. */
  private plan(minWaitMs: number) {
    if (this.stopped) return;
    const schedule = scheduleRenewal(validityOf(this.tls.certPem), this.deps.random ?? Math.random);
    const d = decideRenewal(schedule, this.now);
    if (d.kind === 'expired') {
      this.deps.log.error({ node: this.deps.node }, d.message);
      return;
    }
    const waitMs = Math.max(minWaitMs, d.kind === 'valid' ? d.inMs : 0);
    this.deps.log.info(
      {
        renewAt: new Date(this.now + waitMs).toISOString(),
        notAfter: new Date(schedule.notAfterMs).toISOString(),
      },
      'certificate renewal scheduled',
    );
    this.wait(waitMs, () => void this.renewNow(schedule.notAfterMs));
  }

  private wait(ms: number, fn: () => void) {
    clearTimeout(this.timer);
    // setTimeout holds at most ~24.8 days; longer waits are re-planned when they end.
    this.timer = setTimeout(fn, Math.min(ms, 2 ** 31 - 1));
    this.timer.unref();
  }

  private async renewNow(notAfterMs: number) {
    if (this.stopped) return;
    const { log } = this.deps;
    try {
      const got = await this.deps.renew(await createCsr(this.deps.key, this.deps.node));
      saveCertificate(this.deps.tlsDir, { certPem: got.certPem, caPem: got.caPem || this.tls.caPem });
      this.tls = { ...this.tls, certPem: got.certPem, caPem: got.caPem || this.tls.caPem };
      this.renewals++;
      log.info({ notAfter: validityOf(got.certPem).notAfterMs }, 'certificate renewed; switching to it');
      this.deps.switchTo(this.tls);
      this.plan(MIN_RENEW_GAP_MS);
    } catch (err) {
      const left = notAfterMs - this.now;
      if (left <= 0) return this.plan(0);
      const retryMs = Math.max(1_000, Math.min(30_000, Math.floor(left / 10)));
      log.warn({ err: (err as Error).message, retryMs }, 'certificate renewal failed; retrying');
      this.wait(retryMs, () => void this.renewNow(notAfterMs));
    }
  }
}
