/**
 * The inference server against node-llama-cpp called directly in-process, on the tiny model,
 * interleaved in one run: time to first token, and tokens/s after it (the decode rate, so the
 * request's fixed cost is counted once, in TTFT). Greedy decoding with the same
 * prompt and token budget on both sides, so both generate the same tokens.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlamaCppEngine } from '../../inference/src/engine/llama-cpp.js';
import { freePort, ROOT, waitFor } from '../helpers/procs.js';
import { writeTinyGguf } from '../helpers/tiny-gguf.js';
import { BENCH_MESSAGES, openAiStream, type Sample } from './openai-stream.js';
import { fmt, median } from './stats.js';

const ITERATIONS = Number(process.env.BENCH_INFERENCE_ITERATIONS ?? 40);
const MAX_TOKENS = 128;
const messages = BENCH_MESSAGES;

async function direct(engine: LlamaCppEngine): Promise<Sample> {
  const t0 = performance.now();
  let first = 0;
  const r = await engine.generate({
    messages,
    maxTokens: MAX_TOKENS,
    sample: false,
    signal: new AbortController().signal,
    onText: () => {
      first ||= performance.now();
    },
  });
  const end = performance.now();
  return {
    ttftMs: first - t0,
    tokensPerS: r.completionTokens / ((end - t0) / 1000),
    tokens: r.completionTokens,
  };
}

export async function benchInference(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-model-'));
  const modelPath = join(dir, 'tiny.gguf');
  writeTinyGguf(modelPath);
  const env = {
    MODEL_PATH: modelPath,
    CONTEXT_SIZE: '512',
    GPU_LAYERS: '0',
    THREADS: '1',
    HOST: '127.0.0.1',
  };
  const engine = new LlamaCppEngine({ modelPath, contextSize: 512, parallel: 1, gpuLayers: 0, threads: 1 });
  await engine.load();
  // The server runs as its own process, as it does in its container; the client is this one.
  const port = await freePort();
  const server = spawn(process.execPath, [join(ROOT, 'dist/inference/src/server.js')], {
    env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: 'inherit',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('server model loaded', async () => (await fetch(`${url}/health`)).status === 200, 60_000, 50);
  try {
    await direct(engine);
    await openAiStream(url, MAX_TOKENS); // warm-up
    const d: Sample[] = [];
    const h: Sample[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      d.push(await direct(engine));
      h.push(await openAiStream(url, MAX_TOKENS));
    }
    const tpsD = median(d.map((s) => s.tokensPerS));
    const tpsH = median(h.map((s) => s.tokensPerS));
    const ttftD = median(d.map((s) => s.ttftMs));
    const ttftH = median(h.map((s) => s.ttftMs));
    return [
      `inference, tiny model, greedy, ${MAX_TOKENS} tokens, ${ITERATIONS} interleaved runs (medians):`,
      `  node-llama-cpp in-process   ${tpsD.toFixed(0)} tokens/s  TTFT ${fmt(ttftD)}  (${median(d.map((s) => s.tokens))} tokens)`,
      `  HTTP server, SSE stream     ${tpsH.toFixed(0)} tokens/s  TTFT ${fmt(ttftH)}  (${median(h.map((s) => s.tokens))} tokens)`,
      `  tokens/s ${(((tpsH - tpsD) / tpsD) * 100).toFixed(1)}% (target ≥ -5%); TTFT +${fmt(ttftH - ttftD)} (target ≤ +5 ms)`,
    ];
  } finally {
    server.kill('SIGTERM');
    await engine.close();
  }
}
