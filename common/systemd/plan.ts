/**
 * What `fleet agent install|uninstall` and `fleet server install|uninstall` do, as a list of steps
 * computed by pure functions from what was asked and what the host looks like. Every refusal is
 * decided here, before the first step runs, so a refused install writes nothing; the executor in
 * host.ts only carries the steps out. Tests read the plans without touching a file system.
 *
 *   facts (uid, systemctl, systemd running, files present) ─┐
 *   request (--root, --force, --no-start, --purge) ─────────┼─▶ plan ─▶ Step[] ─▶ execute
 *   the service's files (unit and env text) ────────────────┘     └─▶ refusal (CliError, nothing done)
 */
import { join } from 'node:path';
import { CliError } from '../cli.js';

/** One thing the executor does, in order. Paths are on the target system (before --root). */
export type Step =
  | { kind: 'mkdir'; path: string; mode: number }
  | { kind: 'write'; path: string; mode: number; text: string; what: string }
  | { kind: 'remove'; path: string }
  | { kind: 'rmdir-if-empty'; path: string }
  | { kind: 'remove-tree'; path: string }
  | { kind: 'run'; argv: string[] };

/** A daemon fleet installs: its unit name, its rendered files and where it keeps state. */
export interface ServiceFiles {
  /** The unit's name without `.service`: fleet-agent, fleet-server. */
  name: string;
  unitText: string;
  /** The env file's name under /etc/fleet and its text (it may hold a secret: written 0600). */
  envName: string;
  envText: string;
}

/** The host as the planner needs to know it; host.ts gathers it. */
export interface HostFacts {
  uid: number;
  /** Absolute path of systemctl, or undefined when it is not on PATH. */
  systemctl?: string;
  /** Whether systemd is the running init (/run/systemd/system exists): start and reload need it. */
  systemdRunning: boolean;
  /** Target paths that exist (under --root when given). */
  exists: ReadonlySet<string>;
  /** Why the service could not run the install's paths (ProtectHome hides them...): refusals. */
  pathProblems: readonly string[];
}

export interface InstallRequest {
  /** Install into this directory instead of / : write and enable only, start nothing. */
  root?: string;
  force: boolean;
  start: boolean;
}

export interface UninstallRequest {
  root?: string;
  purge: boolean;
}

/** fleet's own folder in /etc: the env files, and the TLS files playbooks may name (so never wiped). */
export const FLEET_ETC = '/etc/fleet';
/** Where administrators' units live (not /lib/systemd, which belongs to packages). */
export const UNIT_DIR = '/etc/systemd/system';
/** A unit's file on the target system. */
export const unitPath = (name: string) => `${UNIT_DIR}/${name}.service`;
/** An env file on the target system. */
export const envPath = (envName: string) => `${FLEET_ETC}/${envName}`;

/** Where a target path lies on this machine: under --root when given. */
export const onHost = (root: string | undefined, path: string) => (root ? join(root, path) : path);

function systemctl(facts: HostFacts, req: { root?: string }, ...args: string[]): Step {
  const argv = [facts.systemctl!];
  if (req.root) argv.push(`--root=${req.root}`);
  return { kind: 'run', argv: [...argv, ...args] };
}

/** Refusals every install and uninstall shares: who runs it and whether systemd can do its part. */
function checkHost(facts: HostFacts, root: string | undefined, verb: string) {
  if (!root && facts.uid !== 0)
    throw new CliError(`${verb} writes /etc and talks to systemd: run it as root (or with --root DIR)`, 1);
  if (!facts.systemctl)
    throw new CliError(
      `systemctl is not on PATH: ${verb} needs systemd's systemctl (Debian: apt-get install systemd)`,
      1,
    );
  if (!root && !facts.systemdRunning)
    throw new CliError(
      `systemd is not running on this host (no /run/systemd/system): ${verb} cannot reload or start units here; use --root DIR to only write and enable them`,
      1,
    );
}

/**
 * The steps of an install, or a refusal: not root, no systemctl, no running systemd (unless
 * --root), a path the sandbox would hide or others could rewrite (unless --root), or a unit that
 * is already there (unless --force).
 */
export function planInstall(files: ServiceFiles, req: InstallRequest, facts: HostFacts): Step[] {
  checkHost(facts, req.root, `fleet ${files.name.replace(/^fleet-/, '')} install`);
  // Under --root the unit is for another system, whose layout this one cannot vouch for: the
  // caller shows the problems as warnings instead.
  if (facts.pathProblems.length > 0 && !req.root) throw new CliError(facts.pathProblems.join('\n'), 1);
  const unit = unitPath(files.name);
  const env = envPath(files.envName);
  const replacing = facts.exists.has(unit);
  if (replacing && !req.force)
    throw new CliError(
      `${unit} already exists: pass --force to replace it (or run \`fleet ${files.name.replace(/^fleet-/, '')} uninstall\` first)`,
      2,
    );
  const steps: Step[] = [
    { kind: 'mkdir', path: FLEET_ETC, mode: 0o755 },
    { kind: 'mkdir', path: UNIT_DIR, mode: 0o755 },
    { kind: 'write', path: env, mode: 0o600, text: files.envText, what: 'settings' },
    { kind: 'write', path: unit, mode: 0o644, text: files.unitText, what: 'unit' },
  ];
  const name = `${files.name}.service`;
  if (req.root) return [...steps, systemctl(facts, req, 'enable', name)];
  steps.push(systemctl(facts, req, 'daemon-reload'));
  if (!req.start) return [...steps, systemctl(facts, req, 'enable', name)];
  // `enable --now` starts a stopped unit but leaves a running one on its old settings: a replaced
  // unit is restarted so the new files take effect.
  if (replacing)
    return [...steps, systemctl(facts, req, 'enable', name), systemctl(facts, req, 'restart', name)];
  return [...steps, systemctl(facts, req, 'enable', '--now', name)];
}

/**
 * The steps of an uninstall: stop and disable the unit (when its file is there), remove the unit
 * and its env file, /etc/fleet when that leaves it empty, and with `purge` the state directories
 * the installed unit named. Nothing installed: no steps (the caller says so).
 */
export function planUninstall(
  files: Pick<ServiceFiles, 'name' | 'envName'>,
  req: UninstallRequest,
  facts: HostFacts,
  stateDirs: readonly string[],
): Step[] {
  checkHost(facts, req.root, `fleet ${files.name.replace(/^fleet-/, '')} uninstall`);
  const unit = unitPath(files.name);
  const env = envPath(files.envName);
  const name = `${files.name}.service`;
  const steps: Step[] = [];
  if (facts.exists.has(unit))
    steps.push(
      req.root ? systemctl(facts, req, 'disable', name) : systemctl(facts, req, 'disable', '--now', name),
    );
  if (facts.exists.has(unit)) steps.push({ kind: 'remove', path: unit });
  if (facts.exists.has(env)) steps.push({ kind: 'remove', path: env });
  if (steps.length > 0) steps.push({ kind: 'rmdir-if-empty', path: FLEET_ETC });
  if (steps.length > 0 && !req.root) steps.push(systemctl(facts, req, 'daemon-reload'));
  if (req.purge)
    for (const dir of stateDirs) if (facts.exists.has(dir)) steps.push({ kind: 'remove-tree', path: dir });
  return steps;
}

/**
 * The state directories a unit file names (`StateDirectory=a` → /var/lib/a). With DynamicUser=yes
 * systemd keeps them in /var/lib/private/a behind a /var/lib/a link: both go on a purge. Read from
 * the installed unit, so a purge removes what that install used and nothing else.
 */
export function stateDirsOf(unitText: string): string[] {
  const dynamic = /^DynamicUser=yes$/m.test(unitText);
  const dirs: string[] = [];
  for (const m of unitText.matchAll(/^StateDirectory=(.*)$/gm))
    for (const name of m[1]!.trim().split(/\s+/)) {
      if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(name) || name.split('/').includes('..')) continue;
      dirs.push(`/var/lib/${name}`);
      if (dynamic) dirs.push(`/var/lib/private/${name}`);
    }
  return dirs;
}
