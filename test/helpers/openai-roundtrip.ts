import OpenAI from 'openai';

/**
 * What the `openai` npm client sees of a server: its model list, a plain completion (12 tokens at
 * most) and a streamed one (24 tokens at most, with usage), summarised for the caller to assert on.
 * The direct-mode and upstream-mode end-to-end tests run the same round trip.
 */
export async function openAiRoundTrip(baseURL: string) {
  const client = new OpenAI({ baseURL, apiKey: 'unused' });
  const models = (await client.models.list()).data.map((m) => m.id);
  const done = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 12,
  });
  const stream = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 24,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let deltas = 0;
  let usage: OpenAI.CompletionUsage | undefined;
  let finish: string | null | undefined;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    const choice = c.choices[0];
    if (choice?.delta.content) {
      text += choice.delta.content;
      deltas++;
    }
    if (choice?.finish_reason) finish = choice.finish_reason;
  }
  return { client, models, done, streamed: { text, deltas, usage, finish } };
}
