/** A fetch Response's body, read as it arrives: each chunk with the time (performance.now) it came. */
export async function readChunks(res: Response) {
  const chunks: { at: number; text: string }[] = [];
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push({ at: performance.now(), text: decoder.decode(value, { stream: true }) });
  }
  return chunks;
}

/** The one-turn TeleChat dialog the inference end-to-end tests send. */
export const HELLO_DIALOG = [{ role: 'user', content: 'Hello there' }];
