import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChatCompletion } from '../../../inference/src/openai.js';

test('a chat completion request maps messages, stream and sampling options', () => {
  const r = parseChatCompletion({
    model: 'x',
    messages: [
      { role: 'system', content: 'be brief' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'hel' },
          { type: 'text', text: 'lo' },
        ],
      },
    ],
    stream: true,
    stream_options: { include_usage: true },
    max_completion_tokens: 7,
    temperature: 0,
    user: 'ignored',
  });
  assert.ok(r.ok);
  assert.deepEqual(r.params.messages, [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hello' },
  ]);
  assert.deepEqual(
    [r.params.stream, r.params.includeUsage, r.params.maxTokens, r.params.temperature],
    [true, true, 7, 0],
  );
});

const bad: [string, unknown, string][] = [
  ['no messages', { model: 'x' }, 'messages'],
  ['bad role', { messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role'],
  [
    'image content',
    { messages: [{ role: 'user', content: [{ type: 'image_url' }] }] },
    'messages[0].content',
  ],
  [
    'ends with assistant',
    {
      messages: [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
      ],
    },
    'messages',
  ],
  ['n=2', { messages: [{ role: 'user', content: 'a' }], n: 2 }, 'n'],
  ['max_tokens 0', { messages: [{ role: 'user', content: 'a' }], max_tokens: 0 }, 'max_tokens'],
  ['temperature 3', { messages: [{ role: 'user', content: 'a' }], temperature: 3 }, 'temperature'],
  ['stream "yes"', { messages: [{ role: 'user', content: 'a' }], stream: 'yes' }, 'stream'],
  ['tools', { messages: [{ role: 'user', content: 'a' }], tools: [] }, 'tools'],
];
for (const [name, body, param] of bad) {
  test(`rejects ${name} naming param ${param}`, () => {
    const r = parseChatCompletion(body);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.error.param, param);
      assert.equal(r.error.error.type, 'invalid_request_error');
    }
  });
}

test('OpenAI parser: top_k and repetition_penalty are validated like vLLM does', () => {
  const bad = (extra: object) => {
    const r = parseChatCompletion({ messages: [{ role: 'user', content: 'x' }], ...extra });
    return r.ok ? undefined : r.error.error.param;
  };
  assert.equal(bad({ top_k: 1.5 }), 'top_k');
  assert.equal(bad({ top_k: -2 }), 'top_k');
  assert.equal(bad({ repetition_penalty: 0 }), 'repetition_penalty');
  assert.equal(bad({ repetition_penalty: 'x' }), 'repetition_penalty');
  assert.equal(bad({ top_k: 40, repetition_penalty: 1.05 }), undefined);
});
