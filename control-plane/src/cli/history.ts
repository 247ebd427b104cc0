import type { FleetClient, RevisionListReply, RevisionReply } from '../api/client.js';
import { type OutputFormat, printJson } from './output.js';
import { ago, table } from './table.js';

type Revision = RevisionListReply['revisions'][number];

/** The note beside a revision: the current one, and what a rollback rolled back from. */
function note(r: Revision, current: number): string {
  const notes = [
    r.revision === current ? 'current' : '',
    r.rolledBackFrom ? `rollback of ${r.rolledBackFrom}` : '',
  ];
  return notes.filter(Boolean).join(', ');
}

/** `fleet history D` as text: one row per revision, newest first, and how to see older ones. */
export function renderHistory(list: RevisionListReply, now = Date.now()): string {
  const rows = list.revisions.map((r) => [
    String(r.revision),
    ago(r.createdMs, now),
    r.appliedBy || '-',
    r.file,
    r.hash.slice(0, 12),
    r.outcome,
    note(r, list.current),
  ]);
  const out = [`${list.deployment}: at revision ${list.current}`];
  out.push(table(['REV', 'WHEN', 'WHO', 'FILE', 'HASH', 'OUTCOME', 'NOTE'], rows));
  if (list.next !== undefined) out.push(`older: fleet history ${list.deployment} --before ${list.next}`);
  return out.join('\n');
}

/** `fleet history D N` as text: who, when, what, its outcome, then the diff against the one before. */
export function renderRevision(r: RevisionReply, now = Date.now()): string {
  const fields: [string, string][] = [
    [
      'applied',
      `${new Date(r.createdMs).toISOString()} (${ago(r.createdMs, now)}) by ${r.appliedBy || 'unknown'}`,
    ],
    ['file', r.file],
    ['hash', r.hash],
    ['outcome', r.outcome],
  ];
  if (r.rolledBackFrom) fields.push(['rollback', `of revision ${r.rolledBackFrom}`]);
  const head = [`${r.deployment}: revision ${r.revision}`, ...fields.map(([k, v]) => `  ${k.padEnd(9)}${v}`)];
  const against = r.previous ? `revision ${r.previous}` : 'nothing (first revision)';
  const diff = r.diff.includes('\n@@')
    ? r.diff.replace(/^=+\n/, '').trimEnd()
    : '(the playbook text is the same)';
  return `${head.join('\n')}\ndiff against ${against}:\n${diff}`;
}

/** `fleet history DEPLOYMENT [N]`: the revisions, or one with its diff. */
export async function historyCommand(
  client: FleetClient,
  deployment: string,
  n: number | undefined,
  o: { output: OutputFormat; limit: number; before?: number },
) {
  if (n !== undefined) {
    const r = await client.revision(deployment, n);
    if (o.output === 'json') printJson(r);
    else process.stdout.write(`${renderRevision(r)}\n`);
    return;
  }
  const list = await client.revisions(deployment, o.limit, o.before);
  if (o.output === 'json') printJson(list);
  else process.stdout.write(`${renderHistory(list)}\n`);
}
