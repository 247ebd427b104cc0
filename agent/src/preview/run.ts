import { unifiedDiff } from '../../../common/text-diff.js';
import type {
  DeploymentSpec,
  DesiredState,
  ImageNeed,
  NodePreview,
} from '../../../proto/gen/fleet/v1/agent.js';
import type { GpuInfo } from '../gpu/assign.js';
import type { Health, HealthStatus } from '../health/tracker.js';
import { type DesiredContainer, fromSpec, type ObservedContainer } from '../model.js';
import { planRound } from '../plan/planner.js';
import { maskApiKeys } from '../proxy/keys.js';
import { renderNginxConfig } from '../proxy/render.js';
import { upstreamsFor } from '../reconcile/proxy.js';
import { deploymentOfKey } from '../replica-key.js';
import type { ContainerRuntime } from '../runtime.js';
import { type UnitView, unitView } from '../units.js';
import { containerChanges } from './containers.js';

/** What a preview reads, all of it read-only: Docker, the probes, the GPUs, the proxy's config on disk. */
export interface PreviewDeps {
  node: string;
  runtime: Pick<ContainerRuntime, 'list' | 'imagePresent'>;
  /** A container's probe status as the agent's prober knows it. */
  health: (id: string) => { status: HealthStatus; lastProbeAtMs: number } | undefined;
  gpus: () => readonly GpuInfo[];
  proxy: {
    /** The config the deployment's nginx serves now; undefined when it has none. */
    currentConfig(deployment: string): Promise<string | undefined>;
    readApiKeys(file: string): Promise<string[]>;
  };
  now?: () => number;
}

/**
 * `fleet apply --check --diff` on this node: what taking `desired` would do to `deployment` here,
 * worked out from the real containers and images with the agent's own pairing, planner and nginx
 * renderer, changing nothing. The containers are the end state of the update; the GPU notes come
 * from the planner's next round (its GPU ledger); the nginx diff compares the config nginx serves
 * with the one rendered for the proposed spec and today's ready replicas (a new replica's address
 * is known only once it runs). API keys in it are masked.
 */
export async function previewDeployment(
  desired: DesiredState,
  deployment: string,
  deps: PreviewDeps,
): Promise<NodePreview> {
  let observed: ObservedContainer[];
  try {
    observed = await deps.runtime.list();
  } catch (err) {
    return {
      containers: [],
      images: [],
      proxyDiff: '',
      notes: [],
      error: `docker: ${(err as Error).message}`,
    };
  }
  const wanted = fromSpec(desired, deps.node);
  const health = healthOf(observed, deps.health);
  const units = unitView(observed, wanted, health);
  const spec = desired.deployments.find((d) => d.name === deployment);
  const [images, proxy] = await Promise.all([
    imageNeeds(spec, deps.runtime),
    proxyDiff(spec, deployment, units, wanted, deps.proxy),
  ]);
  return {
    containers: containerChanges(units, wanted, deployment),
    images,
    proxyDiff: proxy.diff,
    notes: [...gpuFit(observed, wanted, health, deployment, deps), ...proxy.notes],
    error: '',
  };
}

/** Probe status by container id; 'unknown' until a container's first probe answered (as the loop sees it). */
function healthOf(
  observed: readonly ObservedContainer[],
  health: PreviewDeps['health'],
): Map<string, Health> {
  const out = new Map<string, Health>();
  for (const o of observed) {
    const h = health(o.id);
    if (h) out.set(o.id, h.lastProbeAtMs ? h.status : 'unknown');
  }
  return out;
}

/** Every image the deployment needs here (its services, their engines, its proxy), and whether Docker has it. */
async function imageNeeds(
  spec: DeploymentSpec | undefined,
  runtime: PreviewDeps['runtime'],
): Promise<ImageNeed[]> {
  if (!spec) return [];
  const refs = new Set(spec.services.flatMap((s) => [s.image, ...(s.engine ? [s.engine.image] : [])]));
  if (spec.proxy) refs.add(spec.proxy.image);
  return Promise.all(
    [...refs].sort().map(async (image) => ({
      image,
      present: await runtime.imagePresent(image).catch(() => false),
    })),
  );
}

/**
 * GPU fit, from the planner's GPU ledger on the node's GPUs, as if every image were pulled: the
 * GPUs a created replica would get, a replica that cannot be placed, an update that must stop the
 * old replica first (the GPU deadlock fleet avoids by reporting the gap).
 */
function gpuFit(
  observed: readonly ObservedContainer[],
  wanted: readonly DesiredContainer[],
  health: ReadonlyMap<string, Health>,
  deployment: string,
  deps: PreviewDeps,
): string[] {
  const round = planRound(observed, wanted, {
    imagesPresent: new Set(
      wanted.flatMap((d) => [d.spec.image, ...(d.spec.engine ? [d.spec.engine.image] : [])]),
    ),
    now: deps.now?.() ?? Date.now(),
    health,
    gpus: deps.gpus(),
  });
  const notes: string[] = [];
  for (const s of round.steps) {
    if (s.kind === 'create' && s.gpus.length && s.container.spec.deployment === deployment)
      notes.push(`${s.container.key}: would get GPU ${s.gpus.join(', ')}`);
  }
  for (const w of round.waits) {
    if ((w.kind === 'unschedulable' || w.kind === 'gap') && deploymentOfKey(w.key) === deployment)
      notes.push(`${w.key}: ${w.message}`);
  }
  return notes;
}

/** The unified diff of the nginx config served now against the one the proposed spec renders. */
async function proxyDiff(
  spec: DeploymentSpec | undefined,
  deployment: string,
  units: UnitView,
  wanted: readonly DesiredContainer[],
  proxy: PreviewDeps['proxy'],
): Promise<{ diff: string; notes: string[] }> {
  const before = (await proxy.currentConfig(deployment).catch(() => undefined)) ?? '';
  let after = '';
  if (spec?.proxy) {
    try {
      const healthPaths: Record<string, string> = {};
      for (const d of wanted)
        if (d.spec.deployment === deployment) healthPaths[d.spec.service] = d.health?.path ?? '/';
      after = renderNginxConfig({
        deployment,
        spec: spec.proxy,
        upstreams: upstreamsFor(spec, units.mains, wanted, units.health, new Set()),
        healthPaths,
        apiKeys: spec.proxy.apiKeysFile ? await proxy.readApiKeys(spec.proxy.apiKeysFile) : [],
      });
    } catch (err) {
      return { diff: '', notes: [`proxy: ${(err as Error).message}`] };
    }
  }
  if (before === after) return { diff: '', notes: [] };
  const revision = spec ? `revision ${spec.revision}` : 'no proxy';
  const diff = unifiedDiff(
    before ? 'nginx.conf (serving)' : '/dev/null',
    after ? `nginx.conf (${revision})` : '/dev/null',
    before,
    after,
  );
  return { diff: maskApiKeys(diff), notes: [] };
}
