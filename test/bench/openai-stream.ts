import { type Agent, request } from 'node:http';

/** One benchmark sample: time to the first content, and the decode rate after it. */
export interface Sample {
  ttftMs: number;
  tokensPerS: number;
  tokens: number;
}

export const BENCH_MESSAGES = [
  { role: 'user' as const, content: 'Tell me about inference on GPU clusters.' },
];

/**
 * A streamed OpenAI chat completion over node:http (no web streams, so the figure is the server's
 * cost, not the client's): TTFT at the first non-empty content, tokens from the usage chunk.
 */
export function openAiStream(url: string, maxTokens: number, agent?: Agent): Promise<Sample> {
  const body = JSON.stringify({
    model: 'tiny',
    messages: BENCH_MESSAGES,
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = 0;
    let buf = '';
    const req = request(
      `${url}/v1/chat/completions`,
      { method: 'POST', ...(agent ? { agent } : {}), headers: { 'content-type': 'application/json' } },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (!first && /"content":"[^"]/.test(d)) first = performance.now();
          buf += d;
        });
        res.on('end', () => {
          const end = performance.now();
          const tokens = Number(/"completion_tokens":(\d+)/.exec(buf)?.[1] ?? 0);
          resolve({ ttftMs: first - t0, tokensPerS: (tokens - 1) / ((end - first) / 1000), tokens });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
