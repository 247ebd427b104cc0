import { type Command, Option } from 'commander';
import { arg, CliError } from '../../../common/cli.js';
import { parseDuration } from '../../../common/duration.js';
import { DEFAULT_HOUSEKEEPING_CRON, DEFAULT_RETENTION, type RetentionPolicy } from '../retention/policy.js';
import type { ServerOptions } from '../server.js';

/** Each `--retain-*` flag, the policy field it sets, its help, and its default as written. */
const FLAGS: { flag: string; key: keyof RetentionPolicy; what: string; shown: string }[] = [
  { flag: 'events', key: 'eventsMs', what: 'events agents and liveness report', shown: '2160h, 90 days' },
  {
    flag: 'audit-events',
    key: 'auditEventsMs',
    what: 'audit events (what people did; deployment, token, secret and enrollment changes)',
    shown: '8760h, a year',
  },
  { flag: 'gpu-samples', key: 'gpuSamplesMs', what: 'GPU samples', shown: '168h, 7 days' },
  {
    flag: 'rollout-nodes',
    key: 'rolloutNodesMs',
    what: "per-node detail of finished rollouts (never a deployment's newest)",
    shown: '2160h, 90 days',
  },
  { flag: 'join-tokens', key: 'joinTokensMs', what: 'join tokens past their expiry', shown: '720h, 30 days' },
];

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Adds `--retain-*` (durations; 0 keeps for good) and `--housekeeping CRON` to `fleet server`. */
export function addRetentionOptions(cmd: Command): Command {
  for (const f of FLAGS) {
    cmd.addOption(
      new Option(`--retain-${f.flag} <duration>`, `keep ${f.what} this long (0: for good)`)
        .argParser(arg(parseDuration))
        .default(DEFAULT_RETENTION[f.key], f.shown),
    );
  }
  // Also from the environment: a cron expression holds spaces, which $FLEET_SERVER_ARGS splits at.
  return cmd.option(
    '--housekeeping <cron>',
    'when the retention pass runs (cron expression, local time; also FLEET_HOUSEKEEPING)',
    process.env.FLEET_HOUSEKEEPING || DEFAULT_HOUSEKEEPING_CRON,
  );
}

/** The retention part of the server's options from the parsed flags; a bad cron expression is exit 2. */
export async function retentionOptions(
  o: Record<string, unknown>,
): Promise<Pick<ServerOptions, 'retention' | 'housekeepingCron'>> {
  const { validate } = await import('node-cron');
  const cron = String(o.housekeeping);
  if (!validate(cron)) throw new CliError(`invalid cron expression for --housekeeping: '${cron}'`, 2);
  const retention = Object.fromEntries(FLAGS.map((f) => [f.key, o[camel(`retain-${f.flag}`)] as number]));
  return { retention, housekeepingCron: cron };
}
