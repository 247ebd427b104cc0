import {
  type DesiredContainer,
  fromLabels,
  keyOf,
  labelsFor,
  type ObservedContainer,
} from '../../agent/src/model.js';
import { type ContainerRuntime, RuntimeError } from '../../agent/src/runtime.js';
import type { Clock } from '../../common/clock.js';

export type RuntimeMethod = keyof ContainerRuntime;

const METHODS: readonly RuntimeMethod[] = [
  'list',
  'imagePresent',
  'pull',
  'create',
  'start',
  'restart',
  'remove',
  'version',
  'info',
];

/**
 * An in-memory container engine for loop tests. It keeps images and containers the way Docker
 * would (a created container runs, labels carry the model), counts every call per method, and can
 * fail or hold the next call of any method so tests drive error paths and races deterministically.
 */
export class FakeRuntime implements ContainerRuntime {
  readonly images = new Set<string>();
  /** By container id. */
  readonly containers = new Map<string, ObservedContainer>();
  readonly calls: Record<RuntimeMethod, number> = emptyCounts();
  /** Every call in order, e.g. `create web/web/0`, `pull img`. */
  readonly log: string[] = [];
  private readonly failures = new Map<RuntimeMethod, Error[]>();
  private readonly holds = new Map<RuntimeMethod, Promise<void>>();
  private nextId = 1;

  constructor(private readonly now: () => number = () => 0) {}

  /** Makes the next call of `method` throw `err` (queued: call twice to fail twice). */
  failNext(method: RuntimeMethod, err: Error = new RuntimeError(`${method} failed`, true)) {
    this.failures.set(method, [...(this.failures.get(method) ?? []), err]);
  }

  /** Makes calls of `method` wait until the returned release function runs. */
  hold(method: RuntimeMethod): () => void {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.holds.set(method, gate);
    return () => {
      this.holds.delete(method);
      release();
    };
  }

  resetCalls() {
    for (const m of METHODS) this.calls[m] = 0;
    this.log.length = 0;
  }

  totalCalls(): number {
    return METHODS.reduce((n, m) => n + this.calls[m], 0);
  }

  /** Puts a managed container in place as if an earlier agent (or a person) had made it. */
  addContainer(
    c: Partial<ObservedContainer> & { deployment: string; service: string; replica: number; hash: string },
  ) {
    const id = c.id ?? this.newId();
    const o: ObservedContainer = {
      id,
      name: c.name ?? `fleet-${c.deployment}-${c.service}-${c.replica}-${id}`,
      image: c.image ?? 'img',
      state: c.state ?? 'running',
      createdAtMs: c.createdAtMs ?? this.now(),
      key: keyOf(c.deployment, c.service, c.replica),
      deployment: c.deployment,
      service: c.service,
      replica: c.replica,
      hash: c.hash,
      gpus: c.gpus ?? [],
      ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
      ...(c.hostPort !== undefined ? { hostPort: c.hostPort } : {}),
      ...(c.ip !== undefined ? { ip: c.ip } : {}),
    };
    this.containers.set(id, o);
    return o;
  }

  /** The containers for one key, for assertions. */
  byKey(key: string): ObservedContainer[] {
    return [...this.containers.values()].filter((c) => c.key === key);
  }

  async list(): Promise<ObservedContainer[]> {
    await this.enter('list', '');
    return [...this.containers.values()].map((c) => ({ ...c }));
  }

  async imagePresent(image: string): Promise<boolean> {
    await this.enter('imagePresent', image);
    return this.images.has(image);
  }

  /** Bytes each pull reports before it completes (half, then all), as Docker's progress stream would. */
  pullSizeBytes = 0;

  async pull(
    image: string,
    onProgress?: (p: { currentBytes: number; totalBytes: number }) => void,
  ): Promise<void> {
    if (this.pullSizeBytes)
      onProgress?.({ currentBytes: this.pullSizeBytes / 2, totalBytes: this.pullSizeBytes });
    await this.enter('pull', image);
    if (this.pullSizeBytes)
      onProgress?.({ currentBytes: this.pullSizeBytes, totalBytes: this.pullSizeBytes });
    this.images.add(image);
  }

  async create(c: DesiredContainer, gpus: readonly string[] = []): Promise<string> {
    await this.enter('create', c.key);
    if (!this.images.has(c.spec.image)) throw new RuntimeError(`No such image: ${c.spec.image}`, false);
    if ([...this.containers.values()].some((o) => o.name === c.name)) {
      throw new RuntimeError(`Conflict. The container name "/${c.name}" is already in use`, true);
    }
    const id = this.newId();
    // Round-trip through the labels, as Docker would hand them back on the next list.
    const o = fromLabels(
      { id, name: c.name, image: c.spec.image, state: 'running', createdAtMs: this.now() },
      labelsFor(c, gpus),
    );
    if (!o) throw new Error(`fake runtime: labels of ${c.key} do not round-trip`);
    this.containers.set(id, o);
    return id;
  }

  async start(id: string): Promise<void> {
    await this.enter('start', id);
    const c = this.containers.get(id);
    if (!c) throw new RuntimeError(`No such container: ${id}`, false);
    c.state = 'running';
  }

  async restart(id: string): Promise<void> {
    await this.enter('restart', id);
    const c = this.containers.get(id);
    if (!c) throw new RuntimeError(`No such container: ${id}`, false);
    c.state = 'running';
  }

  async remove(id: string): Promise<void> {
    await this.enter('remove', id);
    this.containers.delete(id);
  }

  async version(): Promise<string> {
    await this.enter('version', '');
    return 'fake-1.0';
  }

  async info() {
    await this.enter('info', '');
    return { version: 'fake-1.0', runtimes: ['runc'], rootDir: '/var/lib/docker' };
  }

  private async enter(method: RuntimeMethod, arg: string) {
    this.calls[method]++;
    this.log.push(arg ? `${method} ${arg}` : method);
    const gate = this.holds.get(method);
    if (gate) await gate;
    const err = this.failures.get(method)?.shift();
    if (err) throw err;
  }

  private newId() {
    return `c${String(this.nextId++).padStart(12, '0')}`;
  }
}

function emptyCounts(): Record<RuntimeMethod, number> {
  return {
    list: 0,
    imagePresent: 0,
    pull: 0,
    create: 0,
    start: 0,
    restart: 0,
    remove: 0,
    version: 0,
    info: 0,
  };
}

/** Timers the test advances by hand; nothing fires on its own. */
export class FakeTimers implements Clock {
  nowMs = 0;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; ms: number; fn: () => void }>();

  readonly now = () => this.nowMs;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.nowMs + ms, ms, fn });
    return id;
  }

  clearTimeout(handle: unknown) {
    this.pending.delete(handle as number);
  }

  /** Delays (ms as requested) of the timers still pending, in scheduling order. */
  delays(): number[] {
    return [...this.pending.values()].map((t) => t.ms);
  }

  get size() {
    return this.pending.size;
  }

  /** Moves the clock forward, firing due timers in time order (timers they set fire too, if due). */
  advance(ms: number) {
    const until = this.nowMs + ms;
    for (;;) {
      const due = [...this.pending.entries()]
        .filter(([, t]) => t.at <= until)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.nowMs = due[1].at;
      due[1].fn();
    }
    this.nowMs = until;
  }
}
