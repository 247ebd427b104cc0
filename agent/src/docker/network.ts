import type Docker from 'dockerode';

/** The bridge network of one node's managed containers: nginx reaches replicas on it, nothing else does. */
export const networkName = (node: string) => `fleet-${node}`;

/**
 * Creates the node's network unless it exists. Two agents (or two rounds) racing to create it
 * both succeed: Docker answers 409 to the loser, which is fine.
 */
export async function ensureNetwork(docker: Docker, node: string): Promise<string> {
  const name = networkName(node);
  const found = await docker.listNetworks({ filters: { name: [name] } });
  if (found.some((n) => n.Name === name)) return name;
  try {
    await docker.createNetwork({
      Name: name,
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: { 'fleet.managed': 'true', 'fleet.node': node },
    });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 409) throw err;
  }
  return name;
}
