import Docker from 'dockerode';

export const REGISTRY = process.env.FLEET_REGISTRY ?? '127.0.0.1:5000';
export const docker = new Docker({ socketPath: '/var/run/docker.sock' });

const HOW = 'start them with `bash scripts/test.sh` (or `source scripts/services.sh && ensure_engines`)';

/**
 * End-to-end tests need the real engines. When one is missing the test fails here, saying how
 * to start it; it never skips.
 */
export async function requireEngines(images: string[] = []) {
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(
      `Docker daemon not reachable on /var/run/docker.sock (${(err as Error).message}); ${HOW}`,
    );
  }
  try {
    const res = await fetch(`http://${REGISTRY}/v2/`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
  } catch (err) {
    throw new Error(`registry not reachable at ${REGISTRY} (${(err as Error).message}); ${HOW}`);
  }
  for (const image of images) {
    const [repo, tag] = image.slice(REGISTRY.length + 1).split(':');
    const res = await fetch(`http://${REGISTRY}/v2/${repo}/manifests/${tag}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    if (!res.ok) throw new Error(`test image ${image} is not in the registry; ${HOW}`);
  }
}

/** Removes a local image (all its tags) so the agent must pull it from the registry. */
export async function removeLocalImage(ref: string) {
  try {
    await docker.getImage(ref).remove({ force: true });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

/** Containers managed for one node, as Docker reports them. */
export async function managedContainers(node: string) {
  return docker.listContainers({ all: true, filters: { label: [`fleet.node=${node}`] } });
}

/** Removes every container (replicas and proxies) and the network the agent made for these nodes. */
export async function removeManaged(nodes: string[]) {
  for (const node of nodes) {
    for (const c of await managedContainers(node)) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404 && err.statusCode !== 409) throw err;
        });
    }
    const nets = await docker.listNetworks({ filters: { name: [`fleet-${node}`] } });
    for (const n of nets)
      if (n.Name === `fleet-${node}`)
        await docker
          .getNetwork(n.Id)
          .remove()
          .catch(() => {});
  }
}
