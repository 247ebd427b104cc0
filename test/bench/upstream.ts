/**
 * Upstream mode against direct mode (issue 6), on the tiny model, interleaved in one run: the same
 * request sent straight to an inference server in llama-cpp mode (direct), and to a second instance
 * in ENGINE=openai-upstream mode in front of it (upstream). Both servers are their own processes, as
 * in their containers; the client is this process (node:http, keep-alive, no web streams, so the
 * figure is the servers' cost and not the client's). What upstream mode adds is one more HTTP hop,
 * an SSE parse and a re-serialization per chunk.
 *
 * Figures: time to first token (request → first text), and tokens/s after it (the decode rate, so
 * a request's fixed cost is counted once, in TTFT). Greedy decoding, same prompt and token budget on
 * both sides, so both generate the same tokens. Targets: TTFT added ≤ 3 ms, tokens/s within 5%.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ROOT, stop, waitFor } from '../helpers/procs.js';
import { writeTinyGguf } from '../helpers/tiny-gguf.js';
import { BENCH_MESSAGES, openAiStream, type Sample } from './openai-stream.js';
import { fmt, median } from './stats.js';

const ITERATIONS = Number(process.env.BENCH_UPSTREAM_ITERATIONS ?? 40);
const MAX_TOKENS = 128;
const TTFT_TARGET_MS = 3;
const TPS_TARGET = -0.05;
const agent = new Agent({ keepAlive: true });

/** A TeleChat v2 stream (plain text): TTFT at the first byte of text; the whole duration. */
function telechatV2(url: string): Promise<{ ttftMs: number; totalMs: number; chars: number }> {
  const body = JSON.stringify({
    dialog: [{ role: 'user', content: BENCH_MESSAGES[0]!.content }],
    max_length: MAX_TOKENS,
  });
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = 0;
    let chars = 0;
    const req = request(
      `${url}/telechat/gptDialog/v2`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          first ||= performance.now();
          chars += d.length;
        });
        res.on('end', () => resolve({ ttftMs: first - t0, totalMs: performance.now() - t0, chars }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

/** CPU time (user + system) a process has used, ms, from /proc (10 ms resolution). */
function cpuMs(pid: number | undefined): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

export async function benchUpstream(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-upstream-'));
  const modelPath = join(dir, 'tiny.gguf');
  writeTinyGguf(modelPath);
  const [upPort, frontPort] = [await freePort(), await freePort()];
  const server = (env: Record<string, string>): ChildProcess =>
    spawn(process.execPath, [join(ROOT, 'dist/inference/src/server.js')], {
      env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
      stdio: 'inherit',
    });
  const up = `http://127.0.0.1:${upPort}`;
  const front = `http://127.0.0.1:${frontPort}`;
  const procs = [
    server({
      MODEL_PATH: modelPath,
      PORT: String(upPort),
      CONTEXT_SIZE: '512',
      GPU_LAYERS: '0',
      THREADS: '1',
      PARALLEL: '1',
    }),
    server({ ENGINE: 'openai-upstream', UPSTREAM_URL: `${up}/v1`, PORT: String(frontPort), PARALLEL: '1' }),
  ];
  try {
    for (const u of [up, front]) {
      await waitFor(`${u} ready`, async () => (await fetch(`${u}/health`)).status === 200, 60_000, 50);
    }
    for (let i = 0; i < 3; i++) {
      await openAiStream(up, MAX_TOKENS, agent);
      await openAiStream(front, MAX_TOKENS, agent);
      await telechatV2(up);
      await telechatV2(front);
    }
    const [upstreamProc, frontProc] = procs;
    const cpu0 = [cpuMs(upstreamProc!.pid), cpuMs(frontProc!.pid)];
    const d: Sample[] = [];
    const u: Sample[] = [];
    const dv2: { ttftMs: number; totalMs: number }[] = [];
    const uv2: { ttftMs: number; totalMs: number }[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      // alternate which goes first, so neither always runs right after the other
      if (i % 2 === 0) {
        d.push(await openAiStream(up, MAX_TOKENS, agent));
        u.push(await openAiStream(front, MAX_TOKENS, agent));
        dv2.push(await telechatV2(up));
        uv2.push(await telechatV2(front));
      } else {
        u.push(await openAiStream(front, MAX_TOKENS, agent));
        d.push(await openAiStream(up, MAX_TOKENS, agent));
        uv2.push(await telechatV2(front));
        dv2.push(await telechatV2(up));
      }
    }
    // Both servers' CPU over the whole loop: the front's is what upstream mode costs the machine.
    const requests = ITERATIONS * 4;
    const upCpu = (cpuMs(upstreamProc!.pid) - cpu0[0]!) / requests;
    const frontCpu = (cpuMs(frontProc!.pid) - cpu0[1]!) / (requests / 2);
    const m = (xs: number[]) => median(xs);
    const ttftD = m(d.map((s) => s.ttftMs));
    const ttftU = m(u.map((s) => s.ttftMs));
    const tpsD = m(d.map((s) => s.tokensPerS));
    const tpsU = m(u.map((s) => s.tokensPerS));
    const v2D = m(dv2.map((s) => s.ttftMs));
    const v2U = m(uv2.map((s) => s.ttftMs));
    // Per-request medians of the difference (each pair ran back to back) say the same, less noisily.
    const pairTtft = m(d.map((s, i) => u[i]!.ttftMs - s.ttftMs));
    const tpsDelta = (tpsU - tpsD) / tpsD;
    return [
      `upstream mode vs direct, tiny model, greedy, ${MAX_TOKENS} tokens, ${ITERATIONS} interleaved runs (medians):`,
      `  OpenAI SSE, direct     ${tpsD.toFixed(0)} tokens/s  TTFT ${fmt(ttftD)}  (${m(d.map((s) => s.tokens))} tokens)`,
      `  OpenAI SSE, upstream   ${tpsU.toFixed(0)} tokens/s  TTFT ${fmt(ttftU)}  (${m(u.map((s) => s.tokens))} tokens)`,
      `  TeleChat v2, direct    TTFT ${fmt(v2D)}  total ${fmt(m(dv2.map((s) => s.totalMs)))}`,
      `  TeleChat v2, upstream  TTFT ${fmt(v2U)}  total ${fmt(m(uv2.map((s) => s.totalMs)))}`,
      `  TTFT added (OpenAI) +${fmt(ttftU - ttftD)} (per-pair median +${fmt(pairTtft)}) (target ≤ +${TTFT_TARGET_MS} ms): ${verdict(ttftU - ttftD <= TTFT_TARGET_MS)}`,
      `  TTFT added (TeleChat v2) +${fmt(v2U - v2D)} (target ≤ +${TTFT_TARGET_MS} ms): ${verdict(v2U - v2D <= TTFT_TARGET_MS)}`,
      `  tokens/s ${(tpsDelta * 100).toFixed(1)}% (target within ${-TPS_TARGET * 100}%): ${verdict(Math.abs(tpsDelta) <= -TPS_TARGET)}`,
      `  CPU per request: upstream (engine) server ${fmt(upCpu)}, front ${fmt(frontCpu)} (${os.availableParallelism()} CPUs on this machine)`,
    ];
  } finally {
    agent.destroy();
    for (const p of procs) await stop(p, 'SIGTERM');
  }
}
