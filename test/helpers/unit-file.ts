/**
 * Reads a rendered systemd unit back as data for assertions: each section's directives in order,
 * comments dropped. Tests then ask what is set, not how the text looks.
 */
export type UnitSections = Record<string, Array<[string, string]>>;

export function parseUnit(text: string): UnitSections {
  const out: UnitSections = {};
  let section = '';
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const head = /^\[(\w+)\]$/.exec(line);
    if (head) {
      section = head[1]!;
      out[section] ??= [];
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 1) throw new Error(`not a unit line: ${line}`);
    out[section]!.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

/** Every value `key` has in `section` (a unit may repeat a key). */
export const values = (u: UnitSections, section: string, key: string) =>
  (u[section] ?? []).filter(([k]) => k === key).map(([, v]) => v);

/** The one value of `key` in [Service] (undefined when absent; throws when repeated). */
export function service(u: UnitSections, key: string): string | undefined {
  const v = values(u, 'Service', key);
  if (v.length > 1) throw new Error(`${key} is set ${v.length} times`);
  return v[0];
}
