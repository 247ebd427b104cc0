/**
 * The side of install/uninstall that touches the machine: what the host looks like (facts for the
 * planner), whether the sandboxed service could run this checkout, and carrying out a plan's
 * steps. Kept apart from plan.ts so the decisions stay testable without a file system.
 */
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError } from '../cli.js';
import { type HostFacts, onHost, type Step } from './plan.js';
import { checkUnitPath } from './unit.js';

/** The repository root of this checkout (this file runs from dist/common/systemd/). */
const CHECKOUT = fileURLToPath(new URL('../../../', import.meta.url));

/** What a unit's ExecStart= runs: this Node binary and this checkout's bin/fleet.js, absolute. */
export interface FleetEntry {
  node: string;
  fleetJs: string;
  checkout: string;
}

/** The absolute paths of the running Node and of this checkout's `fleet` executable. */
export function fleetEntry(): FleetEntry {
  const checkout = realpathSync(CHECKOUT);
  return { node: realpathSync(process.execPath), fleetJs: join(checkout, 'bin/fleet.js'), checkout };
}

/** Directories ProtectHome=yes and PrivateTmp=yes hide from a service. */
const HIDDEN = ['/home', '/root', '/run/user', '/tmp', '/var/tmp'];

const under = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

/**
 * Why the service could not, or should not, run `entry`: a path its ProtectHome=/PrivateTmp= hide, a
 * path systemd would need quoted, code that users other than the owner could rewrite (they would
 * run it as the service: root, for the agent), or (`othersMustRead`, for a service under its own
 * dynamic user) a folder or file on the way that others cannot read. Checks the entry points and
 * the folders they load from (dist/, node_modules/) with every folder above them, not every file
 * below them.
 */
export function entryProblems(entry: FleetEntry, othersMustRead: boolean): string[] {
  const problems: string[] = [];
  for (const [what, p] of [
    ['Node', entry.node],
    ['the fleet checkout', entry.checkout],
  ] as const) {
    const bad = checkUnitPath(what, p);
    if (bad) problems.push(bad);
    const hidden = HIDDEN.find((h) => under(p, h));
    if (hidden)
      problems.push(
        `${what} is under ${hidden} (${p}), which the service's sandbox hides (ProtectHome=, PrivateTmp=): install fleet elsewhere, e.g. /opt/fleet`,
      );
  }
  if (problems.length === 0) problems.push(...accessProblems(entry, othersMustRead));
  return problems;
}

type Kind = 'dir' | 'file' | 'exec';

/** One path's mode against what the service needs of it. */
function modeProblem(p: string, kind: Kind, mode: number, othersMustRead: boolean): string | undefined {
  const sticky = kind === 'dir' && (mode & 0o1000) !== 0;
  if ((mode & 0o022) !== 0 && !sticky)
    return `${p} is writable by group or others (mode ${(mode & 0o777).toString(8)}): whoever can write it would run code as the service; chmod go-w it`;
  const bits = kind === 'file' ? 0o004 : 0o005;
  if (othersMustRead && (mode & bits) !== bits)
    return `${p} is not readable by other users (mode ${(mode & 0o777).toString(8)}); the service runs as its own dynamic user: chmod o+r${kind === 'file' ? '' : 'x'} it`;
  return undefined;
}

/**
 * Node, bin/fleet.js, dist/ and node_modules/ (each followed through links) and every folder from /
 * down to them: none writable by group or others, and with `othersMustRead` each readable (and
 * enterable) by others.
 */
export function accessProblems(entry: FleetEntry, othersMustRead: boolean): string[] {
  const wanted: Array<[string, Kind]> = [
    [entry.node, 'exec'],
    [entry.fleetJs, 'file'],
    [join(entry.checkout, 'dist'), 'dir'],
    [join(entry.checkout, 'node_modules'), 'dir'],
  ];
  const checked = new Set<string>();
  const problems: string[] = [];
  const need = (p: string, kind: Kind) => {
    if (checked.has(p)) return;
    checked.add(p);
    let mode: number;
    try {
      mode = statSync(p).mode;
    } catch {
      problems.push(`${p} is missing (build the checkout first: npm ci && npm run build)`);
      return;
    }
    const problem = modeProblem(p, kind, mode, othersMustRead);
    if (problem) problems.push(problem);
  };
  for (const [p, kind] of wanted) {
    let real: string;
    try {
      real = realpathSync(p);
    } catch {
      need(p, kind);
      continue;
    }
    for (let dir = dirname(real); dir !== '/'; dir = dirname(dir)) need(dir, 'dir');
    need(real, kind);
  }
  return problems;
}

/** systemctl's absolute path from PATH, or undefined. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir.startsWith('/')) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {}
  }
  return undefined;
}

/** What the planner needs to know, read from this machine (`paths` are target paths to look for). */
export function gatherFacts(
  root: string | undefined,
  paths: readonly string[],
  pathProblems: string[],
): HostFacts {
  const exists = new Set<string>();
  for (const p of paths) {
    try {
      lstatSync(onHost(root, p));
      exists.add(p);
    } catch {}
  }
  return {
    uid: process.getuid?.() ?? 0,
    systemctl: findOnPath('systemctl'),
    systemdRunning: existsSync('/run/systemd/system'),
    exists,
    pathProblems,
  };
}

/** Writes `text` to `path` atomically with exactly `mode` (umask does not apply). */
function writeExact(path: string, text: string, mode: number) {
  const tmp = `${path}.fleet-tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function run(argv: string[]) {
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw new CliError(`${argv.join(' ')}: ${r.error.message}`, 1);
  if (r.status !== 0) throw new CliError(`${argv.join(' ')} failed (exit ${r.status ?? r.signal})`, 1);
}

/** Runs one step; returns what to tell the user about it (or nothing). */
function apply(step: Step, root: string | undefined): string | undefined {
  switch (step.kind) {
    case 'mkdir':
      if (existsSync(onHost(root, step.path))) return undefined;
      mkdirSync(onHost(root, step.path), { recursive: true, mode: step.mode });
      return undefined;
    case 'write':
      writeExact(onHost(root, step.path), step.text, step.mode);
      return `wrote ${step.path} (${step.what}, mode ${step.mode.toString(8).padStart(4, '0')})`;
    case 'remove':
      unlinkSync(onHost(root, step.path));
      return `removed ${step.path}`;
    case 'rmdir-if-empty': {
      const p = onHost(root, step.path);
      if (existsSync(p) && readdirSync(p).length === 0) rmdirSync(p);
      return undefined;
    }
    case 'remove-tree':
      rmSync(onHost(root, step.path), { recursive: true, force: true });
      return `removed ${step.path} and everything in it`;
    case 'run':
      run(step.argv);
      return undefined;
  }
}

/** Carries out the steps in order; the first failure stops it with what was already done. */
export function execute(steps: readonly Step[], root: string | undefined, say: (line: string) => void) {
  const done: string[] = [];
  for (const step of steps) {
    try {
      const line = apply(step, root);
      if (line) {
        say(line);
        done.push(line);
      }
    } catch (err) {
      const before = done.length > 0 ? ` (already done: ${done.join('; ')})` : '';
      throw new CliError(`${(err as Error).message}${before}`, (err as CliError).exitCode ?? 1);
    }
  }
}
