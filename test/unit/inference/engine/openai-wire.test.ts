import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  chatCompletionBody,
  errorText,
  parseStreamEvent,
  retryAfterSeconds,
  SseParser,
  upstreamConnectError,
  upstreamHttpError,
} from '../../../../inference/src/engine/openai-wire.js';
import { EngineError } from '../../../../inference/src/engine/types.js';
import { parseChatCompletion } from '../../../../inference/src/openai.js';
import { parseTelechat } from '../../../../inference/src/telechat.js';

/** The pure half of the upstream engine: translation, SSE parsing, error mapping. */

function telechatBody(body: object) {
  const r = parseTelechat(body);
  assert.ok(r.ok);
  const p = r.params;
  return chatCompletionBody(
    {
      messages: p.messages,
      maxTokens: p.maxTokens,
      sample: p.sample,
      temperature: p.temperature,
      topP: p.topP,
      topK: p.topK,
      repeatPenalty: p.repeatPenalty,
    },
    'telechat2-7b',
  );
}

test('TeleChat → chat completion: roles user/bot → user/assistant, system kept, TeleChat defaults greedy', () => {
  const body = telechatBody({
    dialog: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'a' },
      { role: 'bot', content: 'b' },
      { role: 'user', content: 'c' },
    ],
  });
  assert.deepEqual(body, {
    model: 'telechat2-7b',
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
      { role: 'user', content: 'c' },
    ],
    max_tokens: 2048,
    // do_sample defaults to false: greedy, so top_p/top_k (which greedy ignores) are left out
    temperature: 0,
    repetition_penalty: 1.03,
    stream: true,
    stream_options: { include_usage: true },
  });
});

test('TeleChat → chat completion: sampling parameters map one to one (top_k and repetition_penalty as vLLM takes them)', () => {
  const body = telechatBody({
    dialog: [{ role: 'user', content: 'x' }],
    do_sample: true,
    max_length: 100,
    temperature: 0.5,
    top_p: 0.9,
    top_k: 40,
    repetition_penalty: 1.2,
  });
  assert.deepEqual(
    [body.max_tokens, body.temperature, body.top_p, body.top_k, body.repetition_penalty],
    [100, 0.5, 0.9, 40, 1.2],
  );
});

test('OpenAI → chat completion: sampling kept, passthrough fields forwarded but never over the server’s own', () => {
  const r = parseChatCompletion({
    model: 'whatever-the-client-says',
    messages: [{ role: 'user', content: 'hi' }],
    temperature: 0.7,
    top_p: 0.5,
    top_k: -1,
    repetition_penalty: 1.1,
    stop: ['\n'],
    seed: 7,
    presence_penalty: 0.2,
    stream: false,
  });
  assert.ok(r.ok);
  const p = r.params;
  assert.equal(p.topK, undefined, 'top_k -1 means no limit');
  const body = chatCompletionBody(
    {
      messages: p.messages,
      maxTokens: 16,
      sample: p.temperature !== 0,
      temperature: p.temperature,
      topP: p.topP,
      topK: p.topK,
      repeatPenalty: p.repetitionPenalty,
      passthrough: { ...p.passthrough, model: 'evil', stream: false, max_tokens: 99999 },
    },
    'upstream-model',
  );
  assert.deepEqual(body, {
    stop: ['\n'],
    seed: 7,
    presence_penalty: 0.2,
    model: 'upstream-model',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 16,
    temperature: 0.7,
    top_p: 0.5,
    repetition_penalty: 1.1,
    stream: true,
    stream_options: { include_usage: true },
  });
});

const EVENTS = [
  'data: {"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n',
  'data: {"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]}\n\n',
  ': keep-alive comment\n\n',
  'event: message\nid: 3\ndata: {"choices":[{"delta":{"content":"lo \\u4f60"},"finish_reason":null}]}\n\n',
  'data: {"choices":[{"delta":{},"finish_reason":"length"}]}\n\n',
  'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n',
  'data: [DONE]\n\n',
];

test('SSE: a stream cut at every possible place gives the same events', () => {
  // an unterminated tail (dropped): every line end is followed by something, so a CR at the very end
  // (which waits, as it may be half of a CRLF) does not arise
  const whole = `${EVENTS.join('')}data: tail`;
  const expected = new SseParser().push(whole);
  assert.equal(expected.length, 6);
  assert.equal(expected.at(-1), '[DONE]');
  for (let i = 0; i <= whole.length; i++) {
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = whole.replaceAll('\n', eol);
      const p = new SseParser();
      const got = [...p.push(text.slice(0, i)), ...p.push(text.slice(i))];
      assert.deepEqual(got, expected, `cut at ${i}, line ends ${JSON.stringify(eol)}`);
    }
  }
});

test('SSE: property: any split into pieces gives the events of the whole', () => {
  const whole = EVENTS.join('').replaceAll('\n', '\r\n');
  const expected = new SseParser().push(whole);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: whole.length }), { maxLength: 12 }), (cuts) => {
      const points = [...new Set([0, ...cuts, whole.length])].sort((a, b) => a - b);
      const p = new SseParser();
      const got: string[] = [];
      for (let i = 1; i < points.length; i++) got.push(...p.push(whole.slice(points[i - 1], points[i])));
      assert.deepEqual(got, expected);
    }),
  );
});

test('SSE: multi-line data is joined with LF; an unterminated last event is dropped', () => {
  const p = new SseParser();
  assert.deepEqual(p.push('data: a\ndata:b\ndata\n\ndata: tail'), ['a\nb\n']);
  assert.deepEqual(p.push(''), []);
});

test('stream events: text, finish reason, usage, [DONE] and the error shapes of vLLM and this server', () => {
  assert.deepEqual(parseStreamEvent('[DONE]'), { type: 'done' });
  assert.deepEqual(parseStreamEvent('{"choices":[{"delta":{"content":"x"},"finish_reason":null}]}'), {
    type: 'chunk',
    text: 'x',
    finishReason: null,
  });
  assert.deepEqual(
    parseStreamEvent('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}'),
    { type: 'chunk', text: '', finishReason: null, usage: { promptTokens: 3, completionTokens: 4 } },
  );
  assert.deepEqual(
    parseStreamEvent('{"error":{"message":"generation failed: boom","type":"server_error"}}'),
    { type: 'error', message: 'generation failed: boom' },
  );
  assert.deepEqual(parseStreamEvent('{"object":"error","message":"CUDA out of memory","code":500}'), {
    type: 'error',
    message: 'CUDA out of memory',
  });
  assert.equal(parseStreamEvent('not json').type, 'error');
  assert.equal(parseStreamEvent('3').type, 'error');
});

test('upstream HTTP errors map to the statuses and codes direct mode uses', () => {
  const cases: [number, string, string | undefined, EngineError['refusal']][] = [
    [429, '{"error":{"message":"busy"}}', '7', { as: 'busy', retryAfterS: 7 }],
    [429, '', undefined, { as: 'busy', retryAfterS: 1 }],
    [503, '{"status":"loading"}', undefined, { as: 'unavailable', retryAfterS: 5 }],
    [503, '', '30', { as: 'unavailable', retryAfterS: 30 }],
    [401, '{"error":"Unauthorized"}', undefined, { as: 'unavailable', retryAfterS: 10 }],
    [
      404,
      '{"object":"error","message":"The model `x` does not exist."}',
      undefined,
      { as: 'unavailable', retryAfterS: 10 },
    ],
    [
      400,
      '{"object":"error","message":"maximum context length is 4096 tokens"}',
      undefined,
      { as: 'invalid' },
    ],
    [422, '{"detail":"bad field"}', undefined, { as: 'invalid' }],
    [500, 'Internal Server Error', undefined, undefined],
    [502, '', undefined, undefined],
  ];
  for (const [status, body, retryAfter, refusal] of cases) {
    const e = upstreamHttpError(status, body, retryAfter);
    assert.ok(e instanceof EngineError);
    assert.equal(e.kind, 'generate');
    assert.deepEqual(e.refusal, refusal, `HTTP ${status}`);
    assert.match(e.message, new RegExp(`HTTP ${status}`));
  }
  assert.match(upstreamHttpError(400, '{"object":"error","message":"too long"}').message, /too long/);
  assert.match(upstreamHttpError(401, '').message, /UPSTREAM_API_KEY/);
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  const c = upstreamConnectError('http://vllm:8000', refused);
  assert.deepEqual(c.refusal, { as: 'unavailable', retryAfterS: 5 });
  assert.match(c.message, /http:\/\/vllm:8000 unreachable: connect ECONNREFUSED/);
});

test('Retry-After: seconds or an HTTP date, else the fallback', () => {
  assert.equal(retryAfterSeconds('12', 1), 12);
  assert.equal(retryAfterSeconds('0', 3), 1);
  assert.equal(retryAfterSeconds(undefined, 3), 3);
  assert.equal(retryAfterSeconds('soon', 3), 3);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(retryAfterSeconds('Thu, 01 Jan 2026 00:00:09 GMT', 3, now), 9);
  assert.equal(errorText({ error: { message: 'm' } }), 'm');
  assert.equal(errorText({ code: 10903, message: 'telechat' }), 'telechat');
});
