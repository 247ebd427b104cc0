/**
 * Where the agent's memory goes before it does anything (issue 13, agent footprint): fresh Node
 * processes import the agent's libraries one more at a time, in the order the agent loads them,
 * then the agent's own code (agent/src/main.ts and everything it imports); each reports its RSS
 * after a full GC. The difference between two steps is what that step costs a process that has
 * the earlier ones (Node's own modules a library pulls in count with the first that loads them).
 * Three processes per step; the median is shown. No engines needed.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median } from './stats.js';

const MAIN = fileURLToPath(new URL('../../agent/src/main.js', import.meta.url));

/** Cumulative steps: each imports its own specifiers after the previous steps'. */
const STEPS: [string, string[]][] = [
  ['bare node (empty event loop)', []],
  ['commander (the CLI)', ['commander']],
  ['pino (logging)', ['pino']],
  ['@grpc/grpc-js (node:http2, tls)', ['@grpc/grpc-js']],
  ['@bufbuild/protobuf + generated wire code', ['@bufbuild/protobuf']],
  ['dockerode (docker-modem, ssh2, protobufjs, tar-fs)', ['dockerode']],
  ['systeminformation (host facts)', ['systeminformation']],
  ['prom-client (metrics)', ['prom-client']],
  ["the agent's own code (agent/src/main.js and its imports)", [MAIN]],
];

function rssAfter(specifiers: string[]): number {
  const script = `
    for (const s of ${JSON.stringify(specifiers)}) await import(s);
    for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 30)); }
    process.stdout.write(String(process.memoryUsage().rss));`;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    // Bare specifiers resolve from the repository (its node_modules).
    cwd: fileURLToPath(new URL('../../../', import.meta.url)),
  });
  return Number(out) / 2 ** 20;
}

export function benchAgentImports(runs = 3): string[] {
  const lines = [
    'agent footprint before it runs: RSS after a GC, each library imported after the ones above (MB, median of 3 processes):',
  ];
  let prev = 0;
  const acc: string[] = [];
  for (const [label, specs] of STEPS) {
    acc.push(...specs);
    const rss = median(Array.from({ length: runs }, () => rssAfter(acc)));
    lines.push(
      `  ${label.padEnd(62)} ${rss.toFixed(1).padStart(6)}  ${prev ? `+${(rss - prev).toFixed(1)}` : ''}`,
    );
    prev = rss;
  }
  return lines;
}
