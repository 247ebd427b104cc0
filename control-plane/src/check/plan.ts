import { contentHash } from '../../../common/canonical.js';
import type { NodePreview, PreflightCheck } from '../../../proto/gen/fleet/v1/agent.js';
import { toServiceSpec } from '../desired/spec.js';
import type { Playbook } from '../playbook/types.js';
import { type FieldChange, fieldDiff } from './fields.js';

export type ServiceAction = 'create' | 'replace' | 'remove' | 'unchanged';

export interface NodePreflight {
  /** false when the agent could not be asked (offline, or no answer in time) */
  checked: boolean;
  ok: boolean;
  checks: PreflightCheck[];
  message: string;
}

export interface ServicePlan {
  service: string;
  action: ServiceAction;
  /** Check mode: the service's fields before and after on this node (secret-looking values masked). */
  changes?: FieldChange[];
}

export interface NodePlan {
  node: string;
  connected: boolean;
  services: ServicePlan[];
  /** Check mode only: the agent's own preflight checks of the proposed revision. */
  preflight?: NodePreflight;
  /** `--check --diff` only: what the agent would do (containers, images, nginx config); absent when it could not be asked. */
  preview?: NodePreview;
}

/** The top-level keys of a playbook whose changes a check shows besides its services'. */
const DEPLOYMENT_FIELDS = [
  'hosts',
  'serial',
  'max_fail_percentage',
  'rollout',
  'proxy',
  'registry_auth',
  // A secret's new version shows as its fingerprint changing (never a value).
  'secret_pins',
] as const;

/** The deployment-level fields (hosts, serial, rollout, proxy…) before and after; `vars` show through what they fill in. */
export function deploymentChanges(current: Playbook | undefined, next: Playbook): FieldChange[] {
  const pick = (p: Playbook | undefined) =>
    p && Object.fromEntries(DEPLOYMENT_FIELDS.map((k) => [k, p[k]] as const));
  return fieldDiff(pick(current), pick(next));
}

/**
 * Per node, what an apply would do to each service compared with what it runs now; with
 * `fields`, each service's field diff too (a node that does not run the deployment yet compares
 * against nothing). Pure.
 */
export function planNodes(
  current: Playbook | undefined,
  assigned: readonly string[],
  next: Playbook,
  matched: readonly string[],
  nodes: readonly { name: string; connected: boolean }[],
  fields = false,
): NodePlan[] {
  const wasOn = new Set(assigned);
  const isOn = new Set(matched);
  const connected = new Map(nodes.map((n) => [n.name, n.connected]));
  // Every node either keeps, gains or loses the deployment: three plans of services at most,
  // each computed (and hashed) once, not once per node of a 10,000-node fleet.
  const memo = new Map<string, ServicePlan[]>();
  const servicesFor = (before: boolean, after: boolean) => {
    const key = `${before}/${after}`;
    let plan = memo.get(key);
    if (!plan) {
      plan = servicePlans(before ? current : undefined, after ? next : undefined, current, next, fields);
      memo.set(key, plan);
    }
    return plan;
  };
  return [...new Set([...assigned, ...matched])].sort().map((node) => ({
    node,
    connected: connected.get(node) ?? false,
    services: servicesFor(wasOn.has(node), isOn.has(node)),
  }));
}

/** Each service's action from `from` (what the node runs) to `to` (what it would run). */
function servicePlans(
  from: Playbook | undefined,
  to: Playbook | undefined,
  current: Playbook | undefined,
  next: Playbook,
  fields: boolean,
): ServicePlan[] {
  const before = from?.services ?? {};
  const after = to?.services ?? {};
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].sort().map((service) => {
    const a = before[service];
    const b = after[service];
    let action: ServiceAction = 'unchanged';
    if (!a) action = 'create';
    else if (!b) action = 'remove';
    else if (
      contentHash(toServiceSpec(service, a, current?.secret_pins)) !==
      contentHash(toServiceSpec(service, b, next.secret_pins))
    )
      action = 'replace';
    return { service, action, ...(fields ? { changes: fieldDiff(a, b) } : {}) };
  });
}

/** A node's plan with its agent's answer to the check (or why there is none). */
export function withAnswer(
  plan: NodePlan,
  answer: { result: { ok: boolean; checks: PreflightCheck[] }; preview?: NodePreview } | undefined,
): NodePlan {
  if (!answer)
    return {
      ...plan,
      preflight: {
        checked: false,
        ok: false,
        checks: [],
        message: plan.connected ? 'agent did not answer in time' : 'agent not connected',
      },
    };
  const r = answer.result;
  return {
    ...plan,
    preflight: { checked: true, ok: r.ok, checks: r.checks, message: r.ok ? 'checks pass' : 'checks fail' },
    ...(answer.preview ? { preview: answer.preview } : {}),
  };
}
