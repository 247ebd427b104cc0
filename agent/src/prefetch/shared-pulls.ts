import type { ContainerRuntime } from '../runtime.js';

type Progress = { currentBytes: number; totalBytes: number };
type OnProgress = (p: Progress) => void;

interface InFlight {
  done: Promise<void>;
  listeners: Set<OnProgress>;
  last?: Progress;
}

/**
 * One pull per image at a time on this node, whoever asks: the reconcile loop's pull step and the
 * prefetcher go through the same map, so an image a rollout started prefetching is joined, not
 * pulled a second time, when its batch arrives. Everyone waiting sees the same progress.
 */
export class SharedPulls {
  private readonly inFlight = new Map<string, InFlight>();

  constructor(private readonly runtime: Pick<ContainerRuntime, 'pull'>) {}

  pull(image: string, onProgress?: OnProgress): Promise<void> {
    const current = this.inFlight.get(image);
    if (current) {
      if (onProgress) {
        current.listeners.add(onProgress);
        if (current.last) onProgress(current.last);
      }
      return current.done;
    }
    const entry: InFlight = { done: Promise.resolve(), listeners: new Set(onProgress ? [onProgress] : []) };
    entry.done = this.runtime
      .pull(image, (p) => {
        entry.last = p;
        for (const l of entry.listeners) l(p);
      })
      .finally(() => this.inFlight.delete(image));
    this.inFlight.set(image, entry);
    return entry.done;
  }

  /** Images being pulled right now. */
  get pulling(): string[] {
    return [...this.inFlight.keys()];
  }
}

/** The runtime with its pulls going through `pulls`; every other call goes straight through. */
export function withSharedPulls(
  runtime: ContainerRuntime,
  pulls = new SharedPulls(runtime),
): ContainerRuntime {
  return {
    list: () => runtime.list(),
    imagePresent: (image) => runtime.imagePresent(image),
    pull: (image, onProgress) => pulls.pull(image, onProgress),
    create: (c, gpus) => runtime.create(c, gpus),
    start: (id) => runtime.start(id),
    restart: (id) => runtime.restart(id),
    remove: (id) => runtime.remove(id),
    version: () => runtime.version(),
    info: () => runtime.info(),
  };
}
