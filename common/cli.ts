/**
 * What every part's CLI command shares: the root `fleet` program, argument parsers, the error →
 * exit code rule, and shutdown on signals. `bin/fleet.js` composes the parts' commands onto one
 * program, so no part imports another to reach its command.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { VERSION } from './version.js';
import { DEFAULT_VOLUME_ROOTS, parseVolumeRoots } from './volumes.js';

/** An error meant for the user: its message is printed as is and the process exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Wraps a parser that throws so commander reports its message as an invalid argument. */
export const arg =
  <T>(fn: (v: string) => T) =>
  (v: string) => {
    try {
      return fn(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };

/** `--label key=value`, repeatable, accumulated into one record. */
export function parseLabel(v: string, prev: Record<string, string> = {}) {
  const m = /^([A-Za-z0-9][A-Za-z0-9._/-]{0,62})=([A-Za-z0-9._-]{0,63})$/.exec(v);
  if (!m) throw new InvalidArgumentError(`invalid label ${JSON.stringify(v)} (key=value)`);
  return { ...prev, [m[1]!]: m[2]! };
}

/**
 * `--volume-roots`, the same flag on `fleet server` (what playbooks may mount) and `fleet agent`
 * (what it will mount whatever it is sent): one parser and one default, so the two agree unless
 * an operator makes them differ.
 */
export const volumeRootsOption = (description: string) =>
  new Option('--volume-roots <dirs>', description)
    .argParser(arg(parseVolumeRoots))
    .default([...DEFAULT_VOLUME_ROOTS], DEFAULT_VOLUME_ROOTS.join(','));

/** Waits for SIGINT/SIGTERM, then runs `close` once and exits (0 when it closed cleanly). */
export function untilSignal(close: () => Promise<void>) {
  let closing = false;
  const stop = (sig: string) => {
    if (closing) return;
    closing = true;
    process.stderr.write(`${sig}: shutting down\n`);
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The root program the parts add their commands to. */
export function createProgram(): Command {
  return new Command('fleet')
    .description('Deploy LLM inference onto GPU hosts and keep it healthy')
    .version(VERSION)
    .option('--server <url>', 'control plane REST URL (env FLEET_SERVER; default https://127.0.0.1:7080)')
    .option('--token <token>', 'API token (env FLEET_TOKEN, or the config file `fleet login` writes)')
    .option(
      '--ca-file <file>',
      'CA certificate to trust for the server, e.g. its DATA_DIR/ca.crt (env FLEET_CA_FILE)',
    )
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError();
}

/** The root program's options that take a value (`createProgram`); `commandWord` skips their values. */
const ROOT_VALUE_OPTIONS = new Set(['--server', '--token', '--ca-file']);
/** The root program's options without a value. */
const ROOT_FLAGS = new Set(['--debug']);

/**
 * The command a `fleet` command line names (`apply` in `fleet --server URL apply f.yaml`), or
 * undefined when it names none or cannot be told without parsing (help, version, an unknown
 * option first). bin/fleet.js loads only the part that owns the command, so `fleet apply` does
 * not load the agent's command definitions; undefined loads every part, so help and commander's
 * "unknown command" answers stay whole.
 */
export function commandWord(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) return a;
    const name = a.split('=', 1)[0]!;
    if (ROOT_VALUE_OPTIONS.has(name)) {
      if (!a.includes('=')) i++;
    } else if (!ROOT_FLAGS.has(name)) return undefined;
  }
  return undefined;
}

/** An error's exit code: its own `exitCode` when it carries one (CliError, the API client's), else 1. */
export function exitCodeOf(err: unknown): number {
  const code = (err as { exitCode?: unknown }).exitCode;
  return typeof code === 'number' && Number.isInteger(code) && code > 0 ? code : 1;
}

/** Runs the program; errors become one line on stderr and a non-zero exit (stack with --debug). */
export async function runCli(program: Command, argv: string[]) {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const debug = program.opts().debug || argv.includes('--debug');
    process.stderr.write(`fleet: ${(err as Error).message}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = exitCodeOf(err);
  }
}
