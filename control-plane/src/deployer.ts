import { contentHash } from '../../common/canonical.js';
import type { DeploymentSpec, DesiredState } from '../../proto/gen/fleet/v1/agent.js';
import type { FieldChange } from './check/fields.js';
import { deploymentChanges, type NodePlan, planNodes, withAnswer } from './check/plan.js';
import type { RevisionRecord } from './db/deployments.js';
import type { Store } from './db/store.js';
import { DesiredStates } from './desired/cache.js';
import { desiredStateFor, toDeploymentSpec, withoutSecretValues } from './desired/spec.js';
import type { HubEvent } from './grpc/events.js';
import type { PreflightAnswer } from './grpc/preflight.js';
import { parsePlaybook } from './playbook/parse.js';
import type { ParseOptions, Playbook, PlaybookError } from './playbook/types.js';
import { batches } from './rollout/batches.js';
import { rolloutPolicy } from './rollout/policy.js';
import type { StartRollout } from './rollout/runner.js';
import { matchHosts } from './selector.js';

export type { NodePlan, NodePreflight, ServiceAction, ServicePlan } from './check/plan.js';

export type ApplyResult =
  | { ok: false; reason: 'invalid'; errors: PlaybookError[] }
  | { ok: false; reason: 'no-nodes'; message: string }
  | { ok: false; reason: 'conflict'; message: string }
  | {
      ok: true;
      deployment: string;
      revision: number;
      previousRevision: number;
      hash: string;
      changed: boolean;
      check: boolean;
      nodes: NodePlan[];
      /** The rollout that carries the revision to its nodes (absent when nothing rolls out). */
      rollout?: number;
      /** Check mode: the proposed deployment and the nodes it would go to (not sent to clients). */
      proposed?: { spec: DeploymentSpec; nodes: string[] };
      /** Check mode: the batches its rollout would form (none when no rollout would start). */
      batches?: string[][];
      /** Check mode: the deployment-level fields that change (hosts, serial, rollout, proxy). */
      changes?: FieldChange[];
    };

/**
 * Where the deployer's decisions go, as narrow functions wired in `server.ts`: the gRPC hub
 * pushes, the rollout watcher waits, preflight requests ask. Tests pass a recorder.
 */
export interface DeployerPorts {
  /** Sends each connected node among `nodes` its (already invalidated) desired state. */
  push(nodes: readonly string[]): void;
  /** Resolves when the connected nodes took their desired state or said why not (bounded). */
  waitTaken?(nodes: readonly string[], timeoutMs?: number): Promise<void>;
  /**
   * Runs a node's preflight checks on a proposed desired state, and previews what it would change
   * for `previewDeployment` when one is named; undefined when the node cannot answer.
   */
  preflight?(
    node: string,
    desired: DesiredState,
    timeoutMs?: number,
    previewDeployment?: string,
  ): Promise<PreflightAnswer | undefined>;
  /**
   * The rollout engine: a changed revision reaches its nodes batch by batch through it. Without
   * it (unit tests of the deployer alone) every matched node is assigned at once.
   */
  rollouts?: RolloutStarter;
}

/** The part of the rollout runner the deployer uses. */
export interface RolloutStarter {
  /** Creates a rollout inside the caller's transaction; returns its id. */
  create(s: StartRollout): number;
  /** Runs its first batch (after the transaction committed). */
  kick(id: number): void;
  /** Marks the deployment's active rollout superseded (inside the caller's transaction). */
  supersede(deployment: string, byRevision: number): void;
}

/** Options of one apply. */
export interface ApplyOptions {
  /** Refuse unless the deployment is at this revision now (0: does not exist yet); supersedes a running rollout. */
  expectRevision?: number;
  /** Who applies it: the API token's name (the actor of its event). */
  appliedBy?: string;
  /** The OS user the CLI runs as, when it says: extra information for the event, not an identity. */
  localUser?: string;
  /** A rollback: the revision it rolls back from (its rollout's kind is then 'rollback'). */
  rolledBackFrom?: number;
  /**
   * A rollback: the secret versions its target revision pinned. Each one still stored replaces the
   * current version, so going back restores the old certificate or key too (as an automatic
   * rollback, which copies the stable revision, does).
   */
  secretPins?: Record<string, string>;
}

/** What tests and the wiring may set; everything has a default. */
export interface DeployerOptions {
  now?: () => number;
  parseOptions?: ParseOptions;
  /** The process's desired-state cache (shared with the hub and the API); one of its own by default. */
  desired?: DesiredStates;
}

/**
 * Turns playbooks into revisions and revisions into per-node desired state. Validation, storage
 * and assignment happen in one transaction before anything is pushed, so a rejected or failed
 * apply leaves no trace; check mode runs the same path and stores nothing. As the only writer of
 * assignments it invalidates the desired-state cache after each write, before any push.
 */
export class Deployer {
  private readonly now: () => number;
  private readonly parseOptions: ParseOptions;
  readonly desired: DesiredStates;

  constructor(
    private readonly store: Store,
    private readonly ports: DeployerPorts,
    opts: DeployerOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.parseOptions = opts.parseOptions ?? {};
    this.desired = opts.desired ?? new DesiredStates(store.deployments);
  }

  /** The hub listener: a node that says hello may have joined (or left) a group; see `syncNode`. */
  readonly onHubEvent = (e: HubEvent) => {
    if (e.kind === 'connected') this.syncNode(e.node);
  };

  apply(source: string, file: string, check: boolean, opts: ApplyOptions = {}): ApplyResult {
    const parsed = parsePlaybook(source, file, this.parseOptions);
    if (!parsed.ok) return { ok: false, reason: 'invalid', errors: parsed.errors };
    const playbook = this.repin(parsed.playbook, opts.secretPins);
    const nodes = this.store.nodes.list();
    const matched = matchHosts(playbook.hosts, nodes);
    if (matched.length === 0) {
      const known = nodes.map((n) => n.name).join(', ') || 'none registered yet';
      return {
        ok: false,
        reason: 'no-nodes',
        message: `hosts ${JSON.stringify(playbook.hosts)} match no node (nodes: ${known})`,
      };
    }
    const hash = contentHash(playbook);
    const current = this.store.deployments.current(playbook.name);
    const assigned = current ? this.store.deployments.assignments(playbook.name).map((a) => a.node) : [];
    const plans = planNodes(current?.spec, assigned, playbook, matched, nodes, check);
    const sameAssignment = assigned.join() === matched.join();
    const changed = !(current && current.hash === hash && sameAssignment);
    const base = {
      ok: true as const,
      deployment: playbook.name,
      previousRevision: current?.revision ?? 0,
      hash,
      check,
      nodes: plans,
    };
    if (check || !changed) {
      // Same content keeps the current revision, even when only the set of nodes changes.
      const revision = current && current.hash === hash ? current.revision : (current?.revision ?? 0) + 1;
      if (!check) return { ...base, revision, changed };
      const spec = toDeploymentSpec({ deployment: playbook.name, revision, hash, spec: playbook });
      // A rollout starts only for new content; a change of nodes alone assigns them at once.
      const rolls = current?.hash !== hash;
      return {
        ...base,
        revision,
        changed,
        proposed: { spec, nodes: matched },
        batches: rolls ? batches(matched, rolloutPolicy(playbook).serial) : [],
        changes: deploymentChanges(current?.spec, playbook),
      };
    }
    const conflict = this.conflict(playbook.name, current?.revision ?? 0, opts.expectRevision);
    if (conflict) return { ok: false, reason: 'conflict', message: conflict };
    // No await from the conflict check to the commit: applies to one deployment are serialized.
    const stored = this.store.transaction(() =>
      this.write({ playbook, file, source, hash, current, assigned, matched, opts }),
    );
    this.desired.invalidate(stored.touched);
    this.ports.push(stored.touched);
    if (stored.rollout !== undefined) this.ports.rollouts?.kick(stored.rollout);
    return { ...base, revision: stored.revision, changed: true, rollout: stored.rollout };
  }

  /**
   * Why an apply must wait (409): another rollout of the deployment is in progress, or the caller
   * expected another revision. `--expect-revision` naming the current revision supersedes a running
   * rollout, as a new Nomad job version supersedes its deployment.
   */
  private conflict(
    deployment: string,
    currentRevision: number,
    expect: number | undefined,
  ): string | undefined {
    if (expect !== undefined && expect !== currentRevision)
      return `${deployment} is at revision ${currentRevision}, not ${expect}`;
    const active = this.store.rollouts.latest(deployment);
    if (!active || (active.state !== 'running' && active.state !== 'paused') || expect !== undefined)
      return undefined;
    return (
      `${deployment}: the rollout of revision ${active.revision} is ${active.state} (batch ${active.batch + 1} of ` +
      `${active.batches}); wait for it, run \`fleet rollout abort ${deployment}\`, or pass ` +
      `--expect-revision ${currentRevision} to supersede it`
    );
  }

  /**
   * The write half of an apply (inside its transaction): the revision, the nodes that leave, and
   * either a rollout that moves the matched nodes batch by batch or (without a rollout engine, or
   * when only the set of nodes changed) every matched node at once. Returns the nodes whose
   * desired state changed now.
   */
  private write(a: {
    playbook: Playbook;
    file: string;
    source: string;
    hash: string;
    current: RevisionRecord | undefined;
    assigned: string[];
    matched: string[];
    opts: ApplyOptions;
  }): { revision: number; touched: string[]; rollout?: number } {
    const name = a.playbook.name;
    const sameContent = a.current !== undefined && a.current.hash === a.hash;
    const revision = sameContent
      ? a.current!.revision
      : this.store.deployments.addRevision({
          deployment: name,
          hash: a.hash,
          file: a.file,
          source: a.source,
          spec: a.playbook,
          createdMs: this.now(),
          appliedBy: a.opts.appliedBy,
          rolledBackFrom: a.opts.rolledBackFrom,
        });
    this.store.events.add({
      atMs: this.now(),
      deployment: name,
      kind: 'deployment.applied',
      message:
        `revision ${revision} from ${a.file} to ${nodeList(a.matched)}` +
        (a.opts.localUser ? ` (local user ${a.opts.localUser})` : ''),
      actor: a.opts.appliedBy ?? '',
    });
    const rollouts = this.ports.rollouts;
    if (!rollouts) {
      this.store.deployments.setAssignments(name, a.matched, revision);
      return { revision, touched: [...new Set([...a.assigned, ...a.matched])] };
    }
    const matched = new Set(a.matched);
    const assigned = new Set(a.assigned);
    const leaving = a.assigned.filter((n) => !matched.has(n));
    for (const n of leaving) this.store.deployments.unassign(name, n);
    if (sameContent) {
      // Only the set of nodes changed: a newcomer gets what a joining node gets (never a jump past a
      // running rollout's batches); the others stay where they are.
      const joining = a.matched.filter((n) => !assigned.has(n));
      for (const n of joining) this.store.deployments.assign(name, n, this.revisionForNewcomer(a.current!));
      return { revision, touched: [...leaving, ...joining] };
    }
    rollouts.supersede(name, revision);
    const policy = rolloutPolicy(a.playbook);
    const rollout = rollouts.create({
      deployment: name,
      revision,
      fromRevision: a.current?.revision ?? 0,
      stableRevision: this.stableRevision(name, a.current),
      kind: a.opts.rolledBackFrom ? 'rollback' : 'apply',
      policy,
      batches: batches(a.matched, policy.serial),
    });
    return { revision, touched: leaving, rollout };
  }

  /** `pins` in place of the current versions, for the secrets it names that are still stored. */
  private repin(playbook: Playbook, pins: Record<string, string> | undefined): Playbook {
    if (!pins || !playbook.secret_pins) return playbook;
    const next = { ...playbook.secret_pins };
    for (const [name, fp] of Object.entries(pins))
      if (name in next && this.store.secrets.sealed(name, fp) !== undefined) next[name] = fp;
    return { ...playbook, secret_pins: next };
  }

  /** Where a rollback goes: the newest stable revision; one from before rollouts existed counts. */
  private stableRevision(deployment: string, current: RevisionRecord | undefined): number {
    const stable = this.store.rollouts.lastStable(deployment);
    if (stable > 0) return stable;
    return current && this.store.rollouts.outcome(deployment, current.revision) === undefined
      ? current.revision
      : 0;
  }

  /**
   * Re-evaluates every deployment's `hosts:` for one node (it joined or its labels changed), so a
   * host that joins a group gets that group's workloads, like a DaemonSet: the current revision,
   * or, while a rollout runs, the revision the fleet ran before it (the rollout does not include
   * the newcomer). Touches only that node's assignments. Returns whether anything changed.
   */
  syncNode(name: string): boolean {
    const node = this.store.nodes.get(name);
    if (!node) return false;
    let changed = false;
    this.store.transaction(() => {
      // The node's own assignments (indexed by node), never each deployment's whole list: a
      // reconnect storm of N agents stays O(N), not O(N²).
      const mine = new Set(this.store.deployments.nodeAssignments(name).map((a) => a.deployment));
      for (const rev of this.store.deployments.listCurrent()) {
        const assigned = mine.has(rev.deployment);
        const wants = matchHosts(rev.spec.hosts, [node]).length > 0;
        if (wants === assigned) continue;
        if (wants) this.store.deployments.assign(rev.deployment, name, this.revisionForNewcomer(rev));
        else this.store.deployments.unassign(rev.deployment, name);
        changed = true;
      }
    });
    if (changed) this.desired.invalidate([name]);
    return changed;
  }

  private revisionForNewcomer(rev: RevisionRecord): number {
    const active = this.store.rollouts.latest(rev.deployment);
    const rolling = active && (active.state === 'running' || active.state === 'paused');
    return rolling && active.fromRevision > 0 ? active.fromRevision : rev.revision;
  }

  /** A node's labels changed (`fleet label`): `syncNode`, then push the node what changed. */
  relabelled(name: string): boolean {
    const changed = this.syncNode(name);
    if (changed) this.ports.push([name]);
    return changed;
  }

  /**
   * `fleet apply --check`: asks every node the proposed revision would reach to run its preflight
   * checks on the desired state it would then have, in parallel, and adds the answers to the plan;
   * with `preview` (`--diff`) each agent also says what it would change (see agent/src/preview/).
   */
  async withPreflight(result: ApplyResult, timeoutMs = 10_000, preview = false): Promise<ApplyResult> {
    const ask = this.ports.preflight;
    if (!result.ok || !result.proposed || !ask) return result;
    const { spec, nodes } = result.proposed;
    const plans = await Promise.all(
      result.nodes.map(async (plan): Promise<NodePlan> => {
        if (!nodes.includes(plan.node)) return plan;
        // Preflight needs fingerprints, not values: none travel with a question.
        const others = this.desiredFor(plan.node)
          .deployments.filter((d) => d.name !== spec.name)
          .map(withoutSecretValues);
        const desired = desiredStateFor([...others, spec]);
        return withAnswer(plan, await ask(plan.node, desired, timeoutMs, preview ? spec.name : ''));
      }),
    );
    return { ...result, nodes: plans };
  }

  /**
   * After a plain apply: waits (at most `timeoutMs`) until the nodes took the revision or reported
   * why they hold it back, and adds the failing checks to the plan, so the CLI can say so at once.
   */
  async withTaken(result: ApplyResult, timeoutMs = 3_000): Promise<ApplyResult> {
    if (!result.ok || result.check || !result.changed || !this.ports.waitTaken) return result;
    await this.ports.waitTaken(
      result.nodes.map((n) => n.node),
      timeoutMs,
    );
    const nodes = result.nodes.map((plan): NodePlan => {
      const pf = this.store.preflight.get(plan.node);
      if (!pf || pf.ok || pf.desiredVersion !== this.desiredFor(plan.node).version) return plan;
      return {
        ...plan,
        preflight: { checked: true, ok: false, checks: pf.checks, message: 'held back by preflight' },
      };
    });
    return { ...result, nodes };
  }

  /** The DesiredState for one node, from its assignments (cached until they change). */
  desiredFor(node: string): DesiredState {
    return this.desired.forNode(node);
  }
}

/** Node names for an event's message: the first few and how many more (an apply may reach 10,000). */
export function nodeList(nodes: readonly string[], shown = 5): string {
  if (nodes.length <= shown) return nodes.join(', ');
  return `${nodes.slice(0, shown).join(', ')} and ${nodes.length - shown} more (${nodes.length} nodes)`;
}
