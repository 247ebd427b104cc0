/**
 * `fleet join-token create|list|revoke`: the single-use tokens a new host enrolls with
 * (`fleet agent --join-token T`). The token's text is printed once, on stdout alone, so
 * `T=$(fleet join-token create)` captures exactly it.
 */
import type { Command, Option } from 'commander';
import { arg, parseLabel } from '../../../common/cli.js';
import { parseDuration } from '../../../common/duration.js';
import type { FleetClient } from '../api/client.js';
import { type OutputFormat, printJson } from './output.js';
import { table } from './table.js';

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));

async function create(
  client: FleetClient,
  o: { ttl?: string; label: Record<string, string>; output: OutputFormat },
) {
  const made = await client.createJoinToken({ ttl: o.ttl, labels: o.label });
  if (o.output === 'json') return printJson(made);
  process.stdout.write(`${made.token}\n`);
  process.stderr.write(
    `join token ${made.id}: single use, expires ${iso(made.expiresAtMs)}; it is shown only now.\n` +
      `on the new host: fleet agent --control-plane HOST:PORT --join-token <token>\n`,
  );
}

async function list(client: FleetClient, output: OutputFormat) {
  const { tokens } = await client.joinTokens();
  if (output === 'json') return printJson({ tokens });
  const rows = tokens.map((t) => [
    t.id,
    t.state,
    t.usedBy || '-',
    iso(t.expiresAtMs),
    t.createdBy || '-',
    Object.entries(t.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '-',
  ]);
  process.stdout.write(`${table(['ID', 'STATE', 'NODE', 'EXPIRES', 'CREATED BY', 'LABELS'], rows)}\n`);
}

async function revoke(client: FleetClient, id: string, output: OutputFormat) {
  const r = await client.revokeJoinToken(id);
  if (output === 'json') return printJson(r);
  process.stdout.write(`join token ${r.id} ${r.revoked ? 'revoked' : 'was already revoked'}\n`);
}

/** Adds `join-token` and its subcommands to the program. */
export function addJoinTokenCommands(program: Command, client: () => FleetClient, output: () => Option) {
  const jt = program.command('join-token').description('single-use tokens that let a new host enroll');
  jt.command('create')
    .description('mint a token (printed once) for `fleet agent --join-token`')
    .option(
      '--ttl <duration>',
      'how long it stays valid (at most 7d)',
      arg((v: string) => {
        parseDuration(v);
        return v;
      }),
      '24h',
    )
    .option('--label <key=value>', 'a label the node starts with (repeatable)', parseLabel, {})
    .addOption(output())
    .action((o) => create(client(), o));
  jt.command('list')
    .description('tokens with their state (active, used, revoked, expired); never their secrets')
    .addOption(output())
    .action((o) => list(client(), o.output));
  jt.command('revoke')
    .description('revoke an unused token')
    .argument('<id>', 'the token id (the part after "::", before ".")')
    .addOption(output())
    .action((id, o) => revoke(client(), id, o.output));
}
