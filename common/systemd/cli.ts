/**
 * `install` and `uninstall` subcommands for a fleet daemon, shared by `fleet agent` and
 * `fleet server` so both behave alike: validate, gather facts, plan (every refusal happens there,
 * before anything is written), execute, then tell the operator what happens next. Each part
 * supplies only its own options and renderer.
 */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../cli.js';
import { entryProblems, execute, type FleetEntry, fleetEntry, gatherFacts } from './host.js';
import {
  envPath,
  onHost,
  planInstall,
  planUninstall,
  type ServiceFiles,
  stateDirsOf,
  unitPath,
} from './plan.js';

/** How the install went, for the part's closing words. */
export interface InstallOutcome {
  root?: string;
  started: boolean;
  replaced: boolean;
}

/** A daemon `install`/`uninstall` can manage; each part describes its own. */
export interface Installable<O> {
  /** Unit name without `.service`. */
  name: string;
  /** The env file's name under /etc/fleet. */
  envName: string;
  /** Whether the unit runs as a dynamic user, so others must be able to read the checkout. */
  dynamicUser: boolean;
  /** Adds the part's own install options. */
  options(cmd: Command): Command;
  /** The files for these options, or a CliError (exit 2) for bad input. */
  render(o: O, entry: FleetEntry): ServiceFiles;
  /** What to print after an install (never a secret). */
  afterInstall(o: O, outcome: InstallOutcome): string[];
  /** What to print after an uninstall; `kept` are state directories left in place. */
  afterUninstall(purged: string[], kept: string[]): string[];
}

interface CommonInstall {
  root?: string;
  force: boolean;
  start: boolean;
}

/** --root DIR as an absolute path to an existing directory (exit 2 otherwise). */
function rootDir(root: string | undefined): string | undefined {
  if (root === undefined) return undefined;
  const abs = resolve(root);
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {}
  if (!isDir) throw new CliError(`--root ${JSON.stringify(root)} is not a directory`, 2);
  return abs;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

/** Adds `install` and `uninstall` to `parent` (`fleet agent`, `fleet server`). */
export function addInstallCommands<O extends CommonInstall>(parent: Command, svc: Installable<O>): void {
  const short = svc.name.replace(/^fleet-/, '');
  const install = parent
    .command('install')
    .description(
      `write /etc/fleet/${svc.envName} and a hardened ${svc.name}.service, enable and start it (as root)`,
    );
  svc
    .options(install)
    .option('--root <dir>', 'install into this directory instead of / (write and enable only; start nothing)')
    .option('--force', `replace an existing ${svc.name}.service and its settings`, false)
    .option('--no-start', 'enable the unit without starting it now')
    .action((_args, cmd: Command) => {
      const o = cmd.optsWithGlobals() as O;
      const root = rootDir(o.root);
      const entry = fleetEntry();
      const files = svc.render(o, entry);
      const unit = unitPath(svc.name);
      const facts = gatherFacts(root, [unit], entryProblems(entry, svc.dynamicUser));
      const steps = planInstall(files, { root, force: o.force, start: o.start !== false }, facts);
      if (root) for (const p of facts.pathProblems) process.stderr.write(`warning: ${p}\n`);
      execute(steps, root, say);
      const outcome = { root, started: !root && o.start !== false, replaced: facts.exists.has(unit) };
      for (const line of svc.afterInstall(o, outcome)) say(line);
    });

  parent
    .command('uninstall')
    .description(`stop and disable ${svc.name}.service, remove it and /etc/fleet/${svc.envName} (as root)`)
    .option('--root <dir>', 'uninstall from this directory instead of / (disable and remove only)')
    .option('--purge', `also delete the state directory the unit names`, false)
    .action(async (o: { root?: string; purge: boolean }) => {
      const root = rootDir(o.root);
      const unit = unitPath(svc.name);
      const unitText = await readFile(onHost(root, unit), 'utf8').catch(() => '');
      const stateDirs = stateDirsOf(unitText);
      const facts = gatherFacts(root, [unit, envPath(svc.envName), ...stateDirs], []);
      const steps = planUninstall(svc, { root, purge: o.purge }, facts, stateDirs);
      if (steps.length === 0) {
        say(`${svc.name} is not installed (no ${unit}${root ? ` under ${root}` : ''}): nothing to do`);
        return;
      }
      execute(steps, root, say);
      const present = stateDirs.filter((p) => facts.exists.has(p));
      const purged = o.purge ? present : [];
      const kept = o.purge ? [] : present;
      for (const line of svc.afterUninstall(purged, kept)) say(line);
      if (!facts.exists.has(unit)) say(`(${unit} was already gone; \`fleet ${short} install\` sets it up)`);
    });
}
