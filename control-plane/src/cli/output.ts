/** How a command prints: `-o json` for scripts, text tables for people. */
export type OutputFormat = 'text' | 'json';

export function parseOutput(v: string): OutputFormat {
  if (v !== 'text' && v !== 'json')
    throw new Error(`invalid output format ${JSON.stringify(v)} (text or json)`);
  return v;
}

export function printJson(value: unknown) {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One compact JSON object on one line: what commands that stream (`-o json` progress) print. */
export function printJsonLine(value: unknown) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
