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

/** One term of a node list's label selector: the label is present (`key`) or equals `value`. */
export interface LabelTerm {
  key: string;
  value?: string;
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const VALUE = /^[A-Za-z0-9._-]{0,63}$/;
/** More terms than anyone writes by hand; bounds the SQL a query can build. */
export const MAX_LABEL_TERMS = 16;

/**
 * Parses `GET /v1/nodes?label=`: `key` or `key=value` terms (the `hosts:` selector grammar, keys and
 * values by the agent's `--label` rule), comma-separated, all of which must match (like
 * `kubectl -l`). Throws a message naming the bad term.
 */
export function parseLabelSelector(text: string): LabelTerm[] {
  const terms = text.split(',');
  if (terms.length > MAX_LABEL_TERMS)
    throw new Error(`label selector has ${terms.length} terms (at most ${MAX_LABEL_TERMS})`);
  return terms.map((term) => {
    const eq = term.indexOf('=');
    const key = eq < 0 ? term : term.slice(0, eq);
    const value = eq < 0 ? undefined : term.slice(eq + 1);
    if (!KEY.test(key) || (value !== undefined && !VALUE.test(value)))
      throw new Error(
        `invalid label selector term ${JSON.stringify(term)} (key or key=value, comma-separated)`,
      );
    return value === undefined ? { key } : { key, value };
  });
}
