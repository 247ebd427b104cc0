/**
 * Where the CLI finds the control plane and its credentials: flags, then environment, then the
 * config file (`$FLEET_CONFIG`, else `$XDG_CONFIG_HOME/fleet/config.json`, else
 * `~/.config/fleet/config.json`), which `fleet login` writes with owner-only permissions.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError } from '../../../common/cli.js';
import { writeFileAtomic } from '../../../common/pki.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:7080';

export interface ClientConfig {
  server?: string;
  token?: string;
  caFile?: string;
}

type Env = Record<string, string | undefined>;

export function configPath(env: Env = process.env): string {
  if (env.FLEET_CONFIG) return env.FLEET_CONFIG;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'fleet', 'config.json');
}

/** The config file's settings ({} when there is none); refuses a token file others can read. */
export function readConfig(path: string): ClientConfig {
  if (!existsSync(path)) return {};
  let cfg: ClientConfig;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8')) as ClientConfig;
  } catch (err) {
    throw new CliError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (cfg.token && (statSync(path).mode & 0o077) !== 0)
    throw new CliError(`${path} holds a token but others may read it; run chmod 600 ${path}`);
  return cfg;
}

/** Writes the config file: its folder 0700, the file 0600 (it holds a bearer token). */
export function writeConfig(path: string, cfg: ClientConfig) {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomic(path, `${JSON.stringify(cfg, null, 2)}\n`, 0o600);
}

/** What a client command connects with: flags over the environment over the config file. */
export function resolveConnection(
  flags: { server?: string; token?: string; caFile?: string },
  env: Env,
  cfg: ClientConfig,
): { server: string; token?: string; caFile?: string } {
  // An empty variable counts as unset (`FLEET_TOKEN= fleet …`).
  const e = (v: string | undefined) => (v === '' ? undefined : v);
  return {
    server: flags.server ?? e(env.FLEET_SERVER) ?? cfg.server ?? DEFAULT_SERVER,
    token: flags.token ?? e(env.FLEET_TOKEN) ?? cfg.token,
    caFile: flags.caFile ?? e(env.FLEET_CA_FILE) ?? cfg.caFile,
  };
}
