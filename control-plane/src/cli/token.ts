import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { arg, CliError } from '../../../common/cli.js';
import type { FleetClient } from '../api/client.js';
import { isRole, ROLES, type Role } from '../auth/api-token.js';
import { configPath, loginConfig, readConfig, resolveConnection, writeConfig } from './config.js';
import { type OutputFormat, printJson } from './output.js';
import { ago, table } from './table.js';

function parseRole(v: string): Role {
  if (!isRole(v)) throw new Error(`invalid role ${JSON.stringify(v)} (${ROLES.join(', ')})`);
  return v;
}

/** `fleet token create`: the token on stdout (alone, for `$(…)`), the once-only warning on stderr. */
async function createCommand(client: FleetClient, o: { role: Role; name: string; output: OutputFormat }) {
  const t = await client.createToken({ name: o.name, role: o.role });
  if (o.output === 'json') return printJson(t);
  process.stderr.write(`token ${t.name} (${t.role}) created; it is shown this once, store it now:\n`);
  process.stdout.write(`${t.token}\n`);
}

async function listCommand(client: FleetClient, output: OutputFormat) {
  const { tokens } = await client.tokens();
  if (output === 'json') return printJson({ tokens });
  const now = Date.now();
  const rows = tokens.map((t) => [
    t.name,
    t.role,
    ago(t.createdMs, now),
    t.createdBy || '-',
    t.lastUsedMs === null ? 'never' : ago(t.lastUsedMs, now),
  ]);
  process.stdout.write(`${table(['NAME', 'ROLE', 'CREATED', 'BY', 'LAST USED'], rows)}\n`);
}

async function revokeCommand(client: FleetClient, name: string, output: OutputFormat) {
  const r = await client.revokeToken(name);
  if (output === 'json') return printJson(r);
  process.stdout.write(`token ${r.name} revoked\n`);
}

/** `fleet token create|list|revoke`: API tokens for people and CI (admin role). */
export function addTokenCommands(program: Command, client: () => FleetClient, outputOption: () => Option) {
  const token = program.command('token').description('API tokens bound to a role (admin, deployer, viewer)');
  token
    .command('create')
    .description('create a token; it is printed once and stored only hashed')
    .requiredOption('--name <name>', 'its name: the actor in events and history')
    .addOption(new Option('--role <role>', ROLES.join(', ')).argParser(arg(parseRole)).makeOptionMandatory())
    .addOption(outputOption())
    .action((o) => createCommand(client(), o));
  token
    .command('list')
    .description('tokens in use (never their secrets)')
    .addOption(outputOption())
    .action((o) => listCommand(client(), o.output));
  token
    .command('revoke')
    .description('revoke a token at once')
    .argument('<name>', 'a token name')
    .addOption(outputOption())
    .action((name, o) => revokeCommand(client(), name, o.output));
}

/**
 * `fleet login`: saves the server, token and CA file given as flags (or the environment) to the
 * config file, 0600, after checking the token works, so later commands need none of them.
 */
export function addLoginCommand(program: Command, client: () => FleetClient) {
  program
    .command('login')
    .description(
      'save --server, --token (or --token-file) and --ca-file (its absolute path) to the config file (0600)',
    )
    .option('--token-file <file>', 'read the token from a file (e.g. DATA_DIR/admin-token)')
    .action(async (o) => {
      const path = configPath();
      if (o.tokenFile) program.setOptionValue('token', readFileSync(o.tokenFile, 'utf8').trim());
      const conn = resolveConnection(program.opts(), process.env, readConfig(path));
      if (!conn.token)
        throw new CliError('no token to save: pass --token, --token-file or set FLEET_TOKEN', 2);
      await client().nodes({ limit: 1 });
      const saved = loginConfig(conn);
      writeConfig(path, saved);
      const ca = saved.caFile ? `, the CA file ${saved.caFile}` : '';
      process.stdout.write(`saved ${conn.server}, its token${ca} to ${path}\n`);
    });
}
