import type { RevisionRecord } from './db/deployments.js';
import type { Store } from './db/store.js';
import type { ApplyResult, Deployer } from './deployer.js';

/** Options of `fleet rollback` / `POST /v1/deployments/:name/rollback`. */
export interface RollbackOptions {
  /** The revision to go back to; default: the newest stable one whose content differs from the current. */
  to?: number;
  /** As for an apply: refuse unless the deployment is at this revision; supersedes a running rollout. */
  expectRevision?: number;
  /** The API token's name, and the CLI's OS user (see ApplyOptions). */
  appliedBy?: string;
  localUser?: string;
}

export type RollbackResult =
  | Exclude<ApplyResult, { ok: true }>
  | { ok: false; reason: 'not-found'; message: string }
  | { ok: false; reason: 'no-stable'; message: string }
  | (Extract<ApplyResult, { ok: true }> & { to: number });

/**
 * An asked-for rollback is an apply of an older revision's playbook: a new revision (history
 * stays append-only) recording the revision it rolled back from, rolled out with the target's own
 * `serial` and policy, under the same conflict rules (a running rollout refuses unless
 * `expectRevision` names the current revision). Unlike the automatic rollback it does not go to
 * every node at once: nothing is failing, so it is as careful as any apply. Bad input stores nothing.
 */
export function rollback(
  store: Store,
  deployer: Deployer,
  deployment: string,
  opts: RollbackOptions = {},
): RollbackResult {
  const current = store.deployments.current(deployment);
  if (!current)
    return { ok: false, reason: 'not-found', message: `deployment ${JSON.stringify(deployment)} not found` };
  const target =
    opts.to === undefined ? lastStableOther(store, current) : store.deployments.revision(deployment, opts.to);
  if (!target && opts.to !== undefined)
    return {
      ok: false,
      reason: 'not-found',
      message: `${deployment}: revision ${opts.to} does not exist (revisions 1 to ${current.revision})`,
    };
  if (!target)
    return {
      ok: false,
      reason: 'no-stable',
      message:
        `${deployment}: no stable revision to roll back to (none other than revision ${current.revision} ` +
        'finished its rollout healthy); name one with --to N',
    };
  const applied = deployer.apply(target.source, target.file, false, {
    expectRevision: opts.expectRevision,
    appliedBy: opts.appliedBy,
    localUser: opts.localUser,
    rolledBackFrom: current.revision,
    ...(target.spec.secret_pins ? { secretPins: target.spec.secret_pins } : {}),
  });
  return applied.ok ? { ...applied, to: target.revision } : applied;
}

/** The newest revision whose rollout succeeded and whose content is not what runs now. */
function lastStableOther(store: Store, current: RevisionRecord): RevisionRecord | undefined {
  let before = current.revision;
  for (;;) {
    const page = store.deployments.history(current.deployment, 100, before);
    if (page.length === 0) return undefined;
    const stable = page.find(
      (r) => r.hash !== current.hash && store.rollouts.outcome(r.deployment, r.revision) === 'succeeded',
    );
    if (stable) return stable;
    before = page[page.length - 1]!.revision;
  }
}
