/**
 * Resolves a playbook's `hosts:` against node labels, like an Ansible inventory group.
 * Each selector is `all`, a label key (`gpu`: the node has that label, any value), or
 * `key=value`; a node matches when any selector does. A node's own name is an implicit label.
 */
export function matchHosts(
  selectors: readonly string[],
  nodes: readonly { name: string; labels: Record<string, string> }[],
): string[] {
  return nodes
    .filter((n) => selectors.some((s) => matchOne(s, n)))
    .map((n) => n.name)
    .sort();
}

function matchOne(selector: string, node: { name: string; labels: Record<string, string> }): boolean {
  if (selector === 'all' || selector === node.name) return true;
  const eq = selector.indexOf('=');
  if (eq < 0) return Object.hasOwn(node.labels, selector);
  return node.labels[selector.slice(0, eq)] === selector.slice(eq + 1);
}
