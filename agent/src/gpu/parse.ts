/**
 * Pure parsers for what `nvidia-smi` prints. None of them throws: a driver release that words things
 * differently, a truncated pipe or a GPU that answers `[Unknown Error]` yields nulls and skipped rows,
 * never an exception in the agent's facts loop.
 *
 * Driver drift seen in the captures under test/fixtures/nvidia-smi (590 and 595 drivers):
 * - `clocks_throttle_reasons.*` became `clocks_event_reasons.*` (535); the old names are still accepted as
 *   aliases, and the CSV header always shows the new name.
 * - `power.draw` now equals `power.draw.average` where the board has an average, else the instant value;
 *   `power.draw.average` / `power.draw.instant` (aliases `gpu.power.draw.*`) exist since 535.
 * - 595 deprecates `driver_version` in favour of `kmd_version`.
 * - 590+ print `[N/A]` where older drivers printed `[Not Supported]`.
 */

/**
 * The `--query-gpu` fields fleet asks for, in order. Every name is accepted by all captured drivers;
 * {@link FIELD_FALLBACKS} says what to ask instead when a driver rejects one.
 */
export const GPU_QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'pci.bus_id',
  'driver_version',
  'memory.total',
  'memory.used',
  'memory.free',
  'utilization.gpu',
  'utilization.memory',
  'temperature.gpu',
  'power.draw',
  'power.limit',
  'compute_cap',
  'mig.mode.current',
  'ecc.errors.uncorrected.volatile.total',
  'retired_pages.pending',
  'remapped_rows.pending',
  'clocks_event_reasons.active',
  'pstate',
  'fan.speed',
] as const;

/** Fields fleet cannot do without: a driver that rejects one of these is an error, not drift. */
export const REQUIRED_FIELDS: readonly string[] = ['index', 'uuid', 'name'];

/**
 * What to ask for instead when a driver answers `Field "x" is not a valid field to query.`: older
 * drivers know only the throttle name, newer ones may drop the deprecated names. A rejected field with no
 * fallback is simply left out (its sample values become null).
 */
export const FIELD_FALLBACKS: Readonly<Record<string, string>> = {
  'clocks_event_reasons.active': 'clocks_throttle_reasons.active',
  'clocks_throttle_reasons.active': 'clocks_event_reasons.active',
  driver_version: 'kmd_version',
  'power.draw': 'power.draw.average',
  'power.draw.average': 'power.draw.instant',
};

/** Bits of the clocks event (throttle) reason mask, from nvml.h. */
export const THROTTLE_REASON_BITS: readonly (readonly [bit: number, name: string])[] = [
  [0x1, 'gpu_idle'],
  [0x2, 'applications_clocks_setting'],
  [0x4, 'sw_power_cap'],
  [0x8, 'hw_slowdown'],
  [0x10, 'sync_boost'],
  [0x20, 'sw_thermal_slowdown'],
  [0x40, 'hw_thermal_slowdown'],
  [0x80, 'hw_power_brake_slowdown'],
  [0x100, 'display_clock_setting'],
];

/** One GPU as `--query-gpu` reports it. Null means "not reported": unsupported, N/A, or not asked for. */
export interface GpuSample {
  index: number;
  uuid: string;
  name: string;
  busId: string | null;
  driverVersion: string | null;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  memoryFreeMiB: number | null;
  utilizationGpuPct: number | null;
  utilizationMemoryPct: number | null;
  temperatureC: number | null;
  powerDrawW: number | null;
  powerLimitW: number | null;
  fanSpeedPct: number | null;
  computeCap: string | null;
  migMode: 'enabled' | 'disabled' | null;
  eccUncorrected: number | null;
  /** Memory waiting for retirement (pre-Ampere pages) or row remapping (Ampere+): a reset is due. */
  retiredPagesPending: boolean | null;
  /** The raw clocks event reason bitmask; `throttleReasons` names its known bits. */
  throttleReasonsMask: number | null;
  throttleReasons: string[];
  pstate: string | null;
}

/** A MIG device as `nvidia-smi -L` lists it under its parent GPU. */
export interface MigDevice {
  index: number;
  profile: string;
  uuid: string;
}

/** A GPU as `nvidia-smi -L` lists it. */
export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
  mig: MigDevice[];
}

export interface SmiVersion {
  driverVersion: string | null;
  cudaVersion: string | null;
}

/** A process holding a compute context, from `--query-compute-apps`. */
export interface ComputeApp {
  gpuUuid: string;
  pid: number;
  processName: string;
  usedMemoryMiB: number | null;
}

export type FailureKind = 'driver' | 'unknown' | 'other';

export interface SmiFailure {
  kind: FailureKind;
  message: string;
}

/** The name a field is reported under: aliases fold onto the name newer drivers print in CSV headers. */
export function canonicalField(field: string): string {
  const f = field.trim();
  if (f.startsWith('clocks_throttle_reasons.')) return `clocks_event_reasons.${f.slice(24)}`;
  if (f.startsWith('gpu.power.draw.')) return f.slice(4);
  if (f === 'kmd_version') return 'driver_version';
  return f;
}

const NULLISH = new Set(['', 'n/a', 'not supported', 'unknown error', 'insufficient permissions']);

/** A cell's value, or null for `[N/A]`, `N/A`, `[Not Supported]`, `[Unknown Error]`, empty and the like. */
export function cleanValue(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const v = raw.trim();
  if (v.startsWith('[') && v.endsWith(']')) return null;
  if (NULLISH.has(v.toLowerCase())) return null;
  return v;
}

const NUMBER_WITH_UNIT = /^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:[A-Za-z%°]+)?$/;

/** `81559 MiB`, `98.00 W`, `45 %`, `40` → the number; anything else → null. */
export function parseNumber(raw: string | undefined): number | null {
  const v = cleanValue(raw);
  if (v === null) return null;
  const m = NUMBER_WITH_UNIT.exec(v);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

function parseYesNo(raw: string | undefined): boolean | null {
  const v = cleanValue(raw)?.toLowerCase();
  if (v === 'yes' || v === 'true' || v === 'active') return true;
  if (v === 'no' || v === 'false' || v === 'not active') return false;
  return null;
}

function parseMigMode(raw: string | undefined): 'enabled' | 'disabled' | null {
  const v = cleanValue(raw)?.toLowerCase();
  return v === 'enabled' ? 'enabled' : v === 'disabled' ? 'disabled' : null;
}

/** `0x0000000000000044` → the mask (as a number) and the names of its known bits. */
export function decodeThrottleReasons(raw: string | undefined): { mask: number | null; reasons: string[] } {
  const v = cleanValue(raw);
  if (v === null || !/^(?:0x[0-9a-f]{1,16}|\d{1,15})$/i.test(v)) return { mask: null, reasons: [] };
  const mask = Number(BigInt(v));
  const low = Number(BigInt(v) & 0xffffn);
  const reasons = THROTTLE_REASON_BITS.filter(([bit]) => (low & bit) !== 0).map(([, name]) => name);
  return { mask, reasons };
}

function splitCells(line: string): string[] {
  return line.split(',').map((c) => c.trim());
}

/** Strips a CSV header's unit suffix: `memory.total [MiB]` → `memory.total`. */
function headerName(cell: string): string {
  return cell.replace(/\s*\[[^\]]*\]\s*$/, '').trim();
}

function isHeaderLine(cells: string[], fields: readonly string[]): boolean {
  let same = 0;
  cells.forEach((c, i) => {
    const f = fields[i];
    if (f !== undefined && canonicalField(headerName(c)).toLowerCase() === canonicalField(f).toLowerCase()) {
      same++;
    }
  });
  return same > 0 && same * 2 >= Math.min(cells.length, fields.length);
}

/**
 * Parses `nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits` output. Columns are taken by
 * position from `fields` (aliases allowed); a header line and units (plain `--format=csv`) are tolerated.
 * Rows with neither an index nor a UUID are skipped.
 */
export function parseQueryGpu(csv: string, fields: readonly string[]): GpuSample[] {
  const out: GpuSample[] = [];
  if (typeof csv !== 'string') return out;
  const column = new Map<string, number>();
  fields.forEach((f, i) => {
    const c = canonicalField(f);
    if (!column.has(c)) column.set(c, i);
  });
  const nameCol = column.get('name');
  for (const line of csv.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    let cells = splitCells(line);
    if (isHeaderLine(cells, fields)) continue;
    // A comma inside a GPU name would shift every later column: fold the surplus back into the name.
    const extra = cells.length - fields.length;
    if (extra > 0 && nameCol !== undefined) {
      const name = cells.slice(nameCol, nameCol + extra + 1).join(', ');
      cells = [...cells.slice(0, nameCol), name, ...cells.slice(nameCol + extra + 1)];
    }
    const get = (field: string): string | undefined => {
      const i = column.get(field);
      return i === undefined ? undefined : cells[i];
    };
    const index = parseNumber(get('index'));
    const uuid = cleanValue(get('uuid'));
    if ((index === null || !Number.isInteger(index)) && uuid === null) continue;
    const throttle = decodeThrottleReasons(get('clocks_event_reasons.active'));
    const retired = parseYesNo(get('retired_pages.pending'));
    const remapped = parseYesNo(get('remapped_rows.pending'));
    out.push({
      index: index !== null && Number.isInteger(index) ? index : out.length,
      uuid: uuid ?? '',
      name: cleanValue(get('name')) ?? '',
      busId: cleanValue(get('pci.bus_id')),
      driverVersion: cleanValue(get('driver_version')),
      memoryTotalMiB: parseNumber(get('memory.total')),
      memoryUsedMiB: parseNumber(get('memory.used')),
      memoryFreeMiB: parseNumber(get('memory.free')),
      utilizationGpuPct: parseNumber(get('utilization.gpu')),
      utilizationMemoryPct: parseNumber(get('utilization.memory')),
      temperatureC: parseNumber(get('temperature.gpu')),
      powerDrawW:
        parseNumber(get('power.draw')) ??
        parseNumber(get('power.draw.average')) ??
        parseNumber(get('power.draw.instant')),
      powerLimitW: parseNumber(get('power.limit')) ?? parseNumber(get('enforced.power.limit')),
      fanSpeedPct: parseNumber(get('fan.speed')),
      computeCap: cleanValue(get('compute_cap')),
      migMode: parseMigMode(get('mig.mode.current')),
      eccUncorrected: parseNumber(get('ecc.errors.uncorrected.volatile.total')),
      retiredPagesPending: retired === true || remapped === true ? true : (retired ?? remapped),
      throttleReasonsMask: throttle.mask,
      throttleReasons: throttle.reasons,
      pstate: cleanValue(get('pstate')),
    });
  }
  return out;
}

const LIST_GPU = /^GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*([^)\s]+)\s*\)\s*$/;
const LIST_MIG = /^\s*MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*([^)\s]+)\s*\)\s*$/;

/** Parses `nvidia-smi -L`: GPUs and, under each, its MIG devices. Unrecognised lines are ignored. */
export function parseList(text: string): ListedGpu[] {
  const out: ListedGpu[] = [];
  if (typeof text !== 'string') return out;
  for (const line of text.split(/\r?\n/)) {
    const g = LIST_GPU.exec(line);
    if (g) {
      out.push({ index: Number(g[1]), name: g[2]!, uuid: g[3]!, mig: [] });
      continue;
    }
    const m = LIST_MIG.exec(line);
    const parent = out[out.length - 1];
    if (m && parent) parent.mig.push({ index: Number(m[2]), profile: m[1]!, uuid: m[3]! });
  }
  return out;
}

/**
 * Driver and CUDA versions from `nvidia-smi --version` (`DRIVER version : 595.80`, `CUDA Version : 13.2`)
 * or from the default table's header (`Driver Version: 590.48.01      CUDA Version: 13.1`).
 */
export function parseVersion(text: string): SmiVersion {
  if (typeof text !== 'string') return { driverVersion: null, cudaVersion: null };
  const driver = /(?:DRIVER|KMD) version\s*:\s*([0-9][\w.-]*)/i.exec(text);
  const cuda = /CUDA Version\s*:\s*([0-9][\w.-]*)/i.exec(text);
  return { driverVersion: driver?.[1] ?? null, cudaVersion: cuda?.[1] ?? null };
}

/**
 * Parses `--query-compute-apps=gpu_uuid,pid,process_name,used_memory --format=csv,noheader,nounits`
 * (a header line and units are tolerated). A process name may itself contain commas.
 */
export function parseComputeApps(csv: string): ComputeApp[] {
  const out: ComputeApp[] = [];
  if (typeof csv !== 'string') return out;
  for (const line of csv.split(/\r?\n/)) {
    const cells = splitCells(line);
    if (cells.length < 4) continue;
    const gpuUuid = cleanValue(cells[0]);
    const pid = parseNumber(cells[1]);
    if (gpuUuid === null || pid === null || !Number.isInteger(pid) || pid < 0) continue;
    out.push({
      gpuUuid,
      pid,
      processName: cells.slice(2, -1).join(', '),
      usedMemoryMiB: parseNumber(cells[cells.length - 1]),
    });
  }
  return out;
}

/** The field named in `Field "x" is not a valid field to query.`, or null. */
export function parseInvalidField(text: string): string | null {
  if (typeof text !== 'string') return null;
  return /Field "([^"]*)" is not a valid field to query/.exec(text)?.[1] ?? null;
}

/**
 * Why nvidia-smi failed: `driver` when it cannot reach the kernel driver (not loaded, version mismatch
 * after an upgrade without reboot), `unknown` when a GPU answers "Unknown Error" (fallen off the bus,
 * needs a reset), `other` for the rest. The message is the telling line, else the first line.
 */
export function classifyFailure(exitCode: number | null, output: string): SmiFailure {
  const lines = (typeof output === 'string' ? output : '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const find = (re: RegExp) => lines.find((l) => re.test(l));
  const driver = find(/couldn't communicate with the NVIDIA driver|NVIDIA-SMI has failed/i);
  if (driver) return { kind: 'driver', message: driver };
  const unknown = find(/Unknown Error/i);
  if (unknown) return { kind: 'unknown', message: unknown };
  return { kind: 'other', message: lines[0] ?? `nvidia-smi exited with code ${exitCode ?? 'null'}` };
}
