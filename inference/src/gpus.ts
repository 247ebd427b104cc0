import { execFile } from 'node:child_process';

/** One GPU as /health lists it (nvidia-smi's values; null where it says N/A). */
export interface GpuInfo {
  index: number;
  uuid: string;
  name: string;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  utilizationPercent: number | null;
  temperatureC: number | null;
}

const FIELDS = 'index,uuid,name,memory.total,memory.used,utilization.gpu,temperature.gpu';

const num = (s: string | undefined) => {
  const n = Number((s ?? '').trim());
  return s === undefined || Number.isNaN(n) || /N\/A|Not Supported/i.test(s) ? null : n;
};

/** Parses `nvidia-smi --query-gpu=FIELDS --format=csv,noheader,nounits`; N/A values become null. */
export function parseGpuCsv(text: string): GpuInfo[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => line.split(',').map((c) => c.trim()))
    .filter((c) => c.length >= 7 && /^\d+$/.test(c[0]!))
    .map((c) => ({
      index: Number(c[0]),
      uuid: c[1]!,
      name: c[2]!,
      memoryTotalMiB: num(c[3]),
      memoryUsedMiB: num(c[4]),
      utilizationPercent: num(c[5]),
      temperatureC: num(c[6]),
    }));
}

/**
 * GPU data for /health. nvidia-smi can hang on a sick driver: one call at a time, killed after
 * `timeoutMs`, and the last answer is reused for `cacheMs`, so /health never waits on it for long.
 * Absent tool → no GPUs.
 */
export class GpuProbe {
  private last: { at: number; gpus: GpuInfo[]; error?: string } | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly bin: string,
    private readonly timeoutMs = 2_000,
    private readonly cacheMs = 10_000,
  ) {}

  async read(): Promise<{ gpus: GpuInfo[]; error?: string }> {
    if (this.last && Date.now() - this.last.at < this.cacheMs) return this.last;
    this.inFlight ??= this.refresh().finally(() => (this.inFlight = undefined));
    // Once there is an answer, an expired one is served while the refresh runs in the background:
    // a slow nvidia-smi never makes /health (and so the HEALTHCHECK) slow.
    if (this.last) return this.last;
    await this.inFlight;
    return this.last ?? { gpus: [] };
  }

  private refresh(): Promise<void> {
    return new Promise((resolve) => {
      execFile(
        this.bin,
        [`--query-gpu=${FIELDS}`, '--format=csv,noheader,nounits'],
        { timeout: this.timeoutMs, killSignal: 'SIGKILL' },
        (err, stdout) => {
          const code = (err as NodeJS.ErrnoException | null)?.code;
          if (!err) this.last = { at: Date.now(), gpus: parseGpuCsv(stdout) };
          else if (code === 'ENOENT') this.last = { at: Date.now(), gpus: [] };
          else
            this.last = {
              at: Date.now(),
              gpus: this.last?.gpus ?? [],
              error: `nvidia-smi: ${err.message.split('\n')[0]}`,
            };
          resolve();
        },
      );
    });
  }
}
