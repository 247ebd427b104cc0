import {
  type ComputeApp,
  classifyFailure,
  FIELD_FALLBACKS,
  GPU_QUERY_FIELDS,
  type GpuSample,
  type ListedGpu,
  type MigDevice,
  parseComputeApps,
  parseInvalidField,
  parseList,
  parseQueryGpu,
  parseVersion,
  REQUIRED_FIELDS,
} from './parse.js';
import type { CommandRunner } from './runner.js';

export type { CommandResult, CommandRunner } from './runner.js';
export { ExecFileRunner } from './runner.js';

/** The MIG devices carved out of one GPU. */
export interface GpuMig {
  gpuIndex: number;
  gpuUuid: string;
  devices: MigDevice[];
}

/**
 * The host's GPUs as last seen.
 * - `ok`: fresh values.
 * - `absent`: no nvidia-smi on this host (a CPU-only node); no GPUs.
 * - `error`: nvidia-smi ran and failed (driver not reachable, GPU "Unknown Error"); no GPUs, see `error`.
 * - `stale`: nvidia-smi hung and was killed; `gpus`, `mig`, `processes` and `collectedAtMs` are the last
 *   good ones, `error` says why they are old.
 */
export interface GpuState {
  status: 'ok' | 'absent' | 'error' | 'stale';
  gpus: GpuSample[];
  mig: GpuMig[];
  cudaVersion: string | null;
  driverVersion: string | null;
  processes: ComputeApp[];
  error?: string;
  /** When the values were read (for `stale`, when the last good ones were). */
  collectedAtMs: number;
}

export interface GpuCollectorOptions {
  runner: CommandRunner;
  /** The nvidia-smi binary: a name looked up on PATH, or a path. */
  binary?: string;
  /** Per command; a command still running after this is killed and the state turns stale. */
  timeoutMs?: number;
  now?: () => number;
}

type Outcome =
  | { ok: true; stdout: string }
  | {
      ok: false;
      kind: 'absent' | 'timeout' | 'driver' | 'unknown' | 'other';
      message: string;
      output: string;
    };

interface Identity {
  driverVersion: string | null;
  cudaVersion: string | null;
  listed: ListedGpu[];
  /** GPU UUIDs and MIG modes when -L was read: a change means -L must be read again. */
  signature: string;
}

const COMPUTE_APPS_ARGS = [
  '--query-compute-apps=gpu_uuid,pid,process_name,used_memory',
  '--format=csv,noheader,nounits',
];

const signatureOf = (gpus: GpuSample[]) => gpus.map((g) => `${g.uuid}:${g.migMode}`).join(',');

/**
 * Reads GPU facts through nvidia-smi, one command at a time.
 *
 * Each collect runs `--query-gpu` and `--query-compute-apps`; `--version` and `-L` are read on the first
 * collect and again only after a failed one (or when the GPU set or a MIG mode changes, or after
 * {@link invalidate}). At most one nvidia-smi runs at once: a collect() during another returns the same
 * promise, and while a killed nvidia-smi refuses to exit no new one is started (the state stays stale).
 * Fields a driver rejects are swapped for their fallback or dropped, once, and remembered.
 *
 * ```
 *   (none) ──collect──▶ ok ◀──────────────── any status, next good collect
 *                        │ binary missing ──▶ absent
 *                        │ driver / GPU error ──▶ error   (gpus [])
 *                        └ hang, killed ──▶ stale  (last good gpus; error if there were none)
 * ```
 */
export class GpuCollector {
  private readonly runner: CommandRunner;
  private readonly binary: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private fields: string[] = [...GPU_QUERY_FIELDS];
  private identity: Identity | null = null;
  private lastGood: GpuState | null = null;
  private latest: GpuState | null = null;
  private inflight: Promise<GpuState> | null = null;
  private lingering: Promise<void> | null = null;

  constructor(opts: GpuCollectorOptions) {
    this.runner = opts.runner;
    this.binary = opts.binary ?? 'nvidia-smi';
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.now = opts.now ?? Date.now;
  }

  /** The state from the last finished collect, if any. */
  get last(): GpuState | null {
    return this.latest;
  }

  /** The `--query-gpu` fields currently asked for (after any fallbacks). */
  get queryFields(): readonly string[] {
    return this.fields;
  }

  /** Forces `--version` and `-L` to be read again (e.g. after MIG instances were created or destroyed). */
  invalidate(): void {
    this.identity = null;
  }

  collect(): Promise<GpuState> {
    if (this.inflight) return this.inflight;
    const p = this.collectOnce()
      .catch((err: unknown) => this.failed('other', `gpu collect failed: ${String(err)}`))
      .then((state) => {
        this.latest = state;
        return state;
      })
      .finally(() => {
        this.inflight = null;
      });
    this.inflight = p;
    return p;
  }

  private async collectOnce(): Promise<GpuState> {
    if (this.lingering) {
      return this.failed('timeout', 'a killed nvidia-smi has not exited yet (stuck in the driver?)');
    }
    const query = await this.queryGpus();
    if (!query.ok) return this.failed(query.kind, query.message);
    const gpus = parseQueryGpu(query.stdout, this.fields);

    if (!this.identity || this.identity.signature !== signatureOf(gpus)) {
      const identity = await this.readIdentity(gpus);
      if ('kind' in identity) return this.failed(identity.kind, identity.message);
      this.identity = identity;
    }

    const apps = await this.exec(COMPUTE_APPS_ARGS);
    if (!apps.ok) return this.failed(apps.kind, apps.message);

    const { listed, cudaVersion } = this.identity;
    const state: GpuState = {
      status: 'ok',
      gpus,
      mig: listed
        .filter((g) => g.mig.length > 0)
        .map((g) => ({ gpuIndex: g.index, gpuUuid: g.uuid, devices: g.mig })),
      cudaVersion,
      driverVersion: gpus.find((g) => g.driverVersion)?.driverVersion ?? this.identity.driverVersion,
      processes: parseComputeApps(apps.stdout),
      collectedAtMs: this.now(),
    };
    this.lastGood = state;
    return state;
  }

  /** `--query-gpu`, swapping or dropping fields the driver rejects (each at most once). */
  private async queryGpus(): Promise<Outcome> {
    const tried = new Set(this.fields);
    for (;;) {
      const r = await this.exec([`--query-gpu=${this.fields.join(',')}`, '--format=csv,noheader,nounits']);
      if (r.ok) return r;
      const bad = parseInvalidField(r.output);
      if (bad === null || !this.fields.includes(bad) || REQUIRED_FIELDS.includes(bad)) return r;
      const fallback = FIELD_FALLBACKS[bad];
      const next = fallback !== undefined && !tried.has(fallback) ? fallback : null;
      if (next) tried.add(next);
      this.fields = this.fields.flatMap((f) => (f === bad ? (next ? [next] : []) : [f]));
    }
  }

  /** `--version` (falling back to the default table's header on drivers without it), then `-L`. */
  private async readIdentity(
    gpus: GpuSample[],
  ): Promise<Identity | { kind: 'absent' | 'timeout' | 'driver' | 'unknown' | 'other'; message: string }> {
    let version = await this.exec(['--version']);
    if (!version.ok && version.kind === 'other') version = await this.exec([]);
    if (!version.ok) return version;
    const list = await this.exec(['-L']);
    if (!list.ok) return list;
    return { ...parseVersion(version.stdout), listed: parseList(list.stdout), signature: signatureOf(gpus) };
  }

  private async exec(args: string[]): Promise<Outcome> {
    const r = await this.runner.run(this.binary, args, this.timeoutMs);
    const output = `${r.stderr}\n${r.stdout}`;
    if (r.missing) return { ok: false, kind: 'absent', message: `${this.binary} not found`, output };
    if (r.timedOut) {
      if (r.exited) {
        const exited = r.exited;
        this.lingering = exited;
        void exited.then(() => {
          if (this.lingering === exited) this.lingering = null;
        });
      }
      const cmd = [this.binary, ...args].join(' ');
      return {
        ok: false,
        kind: 'timeout',
        message: `${cmd} timed out after ${this.timeoutMs} ms and was killed`,
        output,
      };
    }
    if (r.code !== 0) {
      const { kind, message } = classifyFailure(r.code, output);
      return { ok: false, kind, message, output };
    }
    return { ok: true, stdout: r.stdout };
  }

  private failed(kind: 'absent' | 'timeout' | 'driver' | 'unknown' | 'other', message: string): GpuState {
    this.identity = null;
    const empty = { gpus: [], mig: [], processes: [], cudaVersion: null, driverVersion: null };
    if (kind === 'absent') return { status: 'absent', ...empty, collectedAtMs: this.now() };
    if (kind === 'timeout' && this.lastGood) return { ...this.lastGood, status: 'stale', error: message };
    return { status: 'error', ...empty, error: message, collectedAtMs: this.now() };
  }
}
