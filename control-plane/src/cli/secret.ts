import { readFileSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { CliError } from '../../../common/cli.js';
import type { FleetClient } from '../api/client.js';
import { type OutputFormat, printJson } from './output.js';
import { ago, table } from './table.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/**
 * The value of `fleet secret set`: files concatenated in the order given (a TLS secret is the
 * certificate chain, then the key, as nginx reads one PEM file), or a literal. Never echoed.
 */
export function secretValue(o: { fromFile?: string[]; fromLiteral?: string }): Buffer {
  const files = o.fromFile ?? [];
  if (files.length > 0 === (o.fromLiteral !== undefined))
    throw new CliError(
      'give the value with --from-file FILE (repeatable) or --from-literal VALUE, not both',
      2,
    );
  if (o.fromLiteral !== undefined) return Buffer.from(o.fromLiteral, 'utf8');
  const parts = files.map((f) => {
    try {
      const b = readFileSync(f);
      return b.length > 0 && b[b.length - 1] !== 0x0a && files.length > 1
        ? Buffer.concat([b, Buffer.from('\n')])
        : b;
    } catch (err) {
      throw new CliError(
        `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        2,
      );
    }
  });
  return Buffer.concat(parts);
}

async function setCommand(
  client: FleetClient,
  name: string,
  o: { fromFile?: string[]; fromLiteral?: string; output: OutputFormat },
) {
  const r = await client.setSecret(name, secretValue(o));
  if (o.output === 'json') return printJson(r);
  const state = r.changed ? 'stored' : 'unchanged (same value)';
  process.stdout.write(
    `secret ${r.name}: ${state}, ${r.size} bytes, fingerprint ${r.fingerprint.slice(0, 12)}\n`,
  );
  if (r.changed && r.usedBy.length > 0)
    process.stdout.write(
      `used by ${r.usedBy.join(', ')}: apply their playbooks again to roll the new value out (fleet apply FILE)\n`,
    );
}

async function listCommand(client: FleetClient, output: OutputFormat) {
  const { secrets } = await client.secrets();
  if (output === 'json') return printJson({ secrets });
  const now = Date.now();
  const rows = secrets.map((s) => [
    s.name,
    String(s.size),
    s.fingerprint.slice(0, 12),
    ago(s.updatedMs, now),
    s.updatedBy || '-',
    s.usedBy.join(',') || '-',
  ]);
  process.stdout.write(`${table(['NAME', 'BYTES', 'FINGERPRINT', 'UPDATED', 'BY', 'USED BY'], rows)}\n`);
}

/** `fleet secret set|list|delete`: values stored encrypted by the control plane, never shown again. */
export function addSecretCommands(program: Command, client: () => FleetClient, outputOption: () => Option) {
  const secret = program
    .command('secret')
    .description(
      'secrets playbooks reference as { secret: NAME } (TLS pairs, API keys, tokens, registry logins)',
    );
  secret
    .command('set')
    .description('store a secret (a new version when it exists); deployments get it at their next apply')
    .argument('<name>', "lowercase letters, digits, '.', '_', '-'")
    .option(
      '--from-file <file>',
      'read the value from a file (repeat to concatenate, e.g. tls.crt then tls.key)',
      collect,
    )
    .option('--from-literal <value>', 'the value itself (it stays in your shell history: prefer --from-file)')
    .addOption(outputOption())
    .action((name, o) => setCommand(client(), name, o));
  secret
    .command('list')
    .description('names, sizes, fingerprints and the deployments using each (never values)')
    .addOption(outputOption())
    .action((o) => listCommand(client(), o.output));
  secret
    .command('delete')
    .description('delete a secret and every version of it (refused while a current revision uses it)')
    .argument('<name>', 'a secret name')
    .addOption(outputOption())
    .action(async (name, o) => {
      const r = await client().deleteSecret(name);
      if (o.output === 'json') return printJson(r);
      process.stdout.write(`secret ${r.name} deleted\n`);
    });
}
