import type { Clock, TimerHandle } from '../../../common/clock.js';
import type { Logger } from '../../../common/log.js';
import type { ImagePrefetch, Prefetch, PrefetchStatus } from '../../../proto/gen/fleet/v1/agent.js';
import { Backoff } from '../backoff.js';
import type { ContainerRuntime } from '../runtime.js';

/** Prefetch pulls at once on one node: a few big images in parallel saturate the link, more only thrash the disk. */
export const DEFAULT_PREFETCH_PULLS = 2;
/** Progress reports of a prefetch go out at most this often (the last one always goes out at once). */
export const PREFETCH_REPORT_MS = 500;

export interface PrefetcherDeps {
  /** Only these two: prefetching never creates, starts, stops or changes a container. */
  runtime: Pick<ContainerRuntime, 'imagePresent' | 'pull'>;
  clock: Clock;
  /** Sends a status to the control plane; false when the stream is down (the next Prefetch re-asks). */
  send: (s: PrefetchStatus) => boolean;
  log: Logger;
  maxPulls?: number;
  reportEveryMs?: number;
}

interface Job {
  deployment: string;
  revision: number;
  images: ImagePrefetch[];
  cancelled: boolean;
  done: boolean;
  lastSentMs: number;
  timer?: TimerHandle;
}

/**
 * Pulls the images of a rollout's revision in the background when the control plane asks
 * (`Prefetch`), so this node's batch later swaps containers instead of waiting for a pull.
 *
 *   per image: pending ──present already──▶ present
 *                 └──slot free──▶ pulling ──▶ present | failed (error kept; retried, after the
 *                                                      usual backoff, only when a Prefetch asks again)
 *
 * Pulls are bounded (`maxPulls` at a time) and go through the node's shared pull map, so the
 * reconciler joining an image being prefetched never pulls it twice. A newer revision's Prefetch
 * for the same deployment replaces the older one's queue.
 */
export class Prefetcher {
  private readonly jobs = new Map<string, Job>();
  private readonly failures = new Map<string, { backoff: Backoff; notBeforeMs: number }>();
  private readonly running = new Set<Promise<void>>();
  private readonly queue: (() => void)[] = [];
  private active = 0;

  constructor(private readonly deps: PrefetcherDeps) {}

  /** Starts (or re-reports) a prefetch; returns at once, the pulls go on in the background. */
  handle(p: Prefetch) {
    const current = this.jobs.get(p.deployment);
    if (current && !current.done && current.revision === p.revision) {
      // Asked again (a reconnect): the work goes on, the control plane gets where it stands.
      this.report(current, true);
      return;
    }
    if (current) this.cancel(current);
    const job: Job = {
      deployment: p.deployment,
      revision: p.revision,
      images: [...new Set(p.images)].map((image) => ({
        image,
        state: 'pending',
        bytesDone: 0,
        bytesTotal: 0,
        error: '',
      })),
      cancelled: false,
      done: false,
      lastSentMs: Number.NEGATIVE_INFINITY,
    };
    this.jobs.set(p.deployment, job);
    this.deps.log.info({ deployment: p.deployment, revision: p.revision, images: p.images }, 'prefetch');
    const run = this.run(job).finally(() => this.running.delete(run));
    this.running.add(run);
  }

  /** Resolves once every prefetch started so far settled (tests, shutdown). */
  async idle() {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  /** Stops reporting; pulls in flight finish (they are shared), queued ones do not start. */
  stop() {
    for (const job of this.jobs.values()) this.cancel(job);
  }

  private cancel(job: Job) {
    job.cancelled = true;
    if (job.timer !== undefined) this.deps.clock.clearTimeout(job.timer);
    job.timer = undefined;
  }

  private async run(job: Job) {
    this.report(job, true);
    await Promise.all(job.images.map((img) => this.one(job, img)));
    job.done = true;
    if (job.cancelled) return;
    this.deps.log.info(
      {
        deployment: job.deployment,
        revision: job.revision,
        images: Object.fromEntries(job.images.map((i) => [i.image, i.state])),
      },
      'prefetch done',
    );
    this.report(job, true);
  }

  private async one(job: Job, img: ImagePrefetch) {
    const { runtime } = this.deps;
    try {
      if (await runtime.imagePresent(img.image)) return this.set(job, img, 'present');
      await this.waitBackoff(img.image);
      await this.acquire();
      try {
        if (job.cancelled) return;
        // The reconciler may have pulled it while this waited for a slot.
        if (await runtime.imagePresent(img.image)) return this.set(job, img, 'present');
        this.set(job, img, 'pulling');
        await runtime.pull(img.image, (p) => {
          img.bytesDone = p.currentBytes;
          img.bytesTotal = p.totalBytes;
          this.report(job);
        });
      } finally {
        this.release();
      }
      this.failures.delete(img.image);
      if (img.bytesTotal > 0) img.bytesDone = img.bytesTotal;
      this.set(job, img, 'present');
    } catch (err) {
      img.error = (err as Error).message;
      this.failed(img.image);
      this.deps.log.warn({ image: img.image, err: img.error }, 'prefetch pull failed');
      this.set(job, img, 'failed');
    }
  }

  private set(job: Job, img: ImagePrefetch, state: 'pulling' | 'present' | 'failed') {
    img.state = state;
    if (state !== 'failed') img.error = '';
    this.report(job);
  }

  /** Sends the job's status now when the last one is old enough (or `now`), else once the throttle allows. */
  private report(job: Job, now = false) {
    if (job.cancelled) return;
    const { clock } = this.deps;
    const every = this.deps.reportEveryMs ?? PREFETCH_REPORT_MS;
    const wait = job.lastSentMs + every - clock.now();
    if (!now && wait > 0) {
      job.timer ??= clock.setTimeout(() => {
        job.timer = undefined;
        this.report(job);
      }, wait);
      return;
    }
    if (job.timer !== undefined) clock.clearTimeout(job.timer);
    job.timer = undefined;
    job.lastSentMs = clock.now();
    this.deps.send({
      deployment: job.deployment,
      revision: job.revision,
      images: job.images.map((i) => ({ ...i })),
    });
  }

  private failed(image: string) {
    const f = this.failures.get(image) ?? { backoff: new Backoff(1_000, 60_000), notBeforeMs: 0 };
    f.notBeforeMs = this.deps.clock.now() + f.backoff.next();
    this.failures.set(image, f);
  }

  /** A pull that failed before is tried again only after its backoff, like the reconciler's retries. */
  private waitBackoff(image: string): Promise<void> {
    const wait = (this.failures.get(image)?.notBeforeMs ?? 0) - this.deps.clock.now();
    if (wait <= 0) return Promise.resolve();
    return new Promise((resolve) => this.deps.clock.setTimeout(resolve, wait));
  }

  private acquire(): Promise<void> {
    if (this.active < (this.deps.maxPulls ?? DEFAULT_PREFETCH_PULLS)) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private release() {
    const next = this.queue.shift();
    if (next) next();
    else this.active--;
  }
}
