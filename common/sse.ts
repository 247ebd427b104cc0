/** One server-sent event as the WHATWG EventSource parser delivers it. */
export interface SseMessage {
  /** The last `id:` seen on the stream (it carries over to later events, as in EventSource). */
  id: string;
  /** `event:`, or 'message' when absent. */
  event: string;
  data: string;
}

/** A message, or a line starting with ':' (heartbeats, the server's last words). */
export type SseItem = { type: 'message'; message: SseMessage } | { type: 'comment'; text: string };

/** The fields of the event being read, between blank lines. */
class Pending {
  id = '';
  event = '';
  data: string[] = [];

  /** One non-blank line: a comment is returned, a field is kept. */
  line(line: string): SseItem | undefined {
    if (line.startsWith(':')) return { type: 'comment', text: line.slice(1).trimStart() };
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return undefined;
  }

  /** A blank line: the event, if it had data; the id carries over, the rest resets. */
  dispatch(): SseItem | undefined {
    const { id, event, data } = this;
    this.event = '';
    this.data = [];
    return data.length > 0
      ? { type: 'message', message: { id, event: event || 'message', data: data.join('\n') } }
      : undefined;
  }
}

/**
 * Splits a `text/event-stream` into messages and comments however the bytes were cut (the WHATWG
 * rules: lines end in LF, CRLF or CR; a blank line dispatches; `data:` lines join with LF; one
 * space after the colon is dropped; an unterminated last event is never dispatched). Push-based,
 * so a hot streaming path feeds it decoded text with no extra allocation of iterators; the one
 * parser of the project (the CLI following events, the inference server reading an upstream).
 */
export class SseParser {
  private buf = '';
  private readonly pending = new Pending();

  /** Feeds decoded text; returns every item it completed, in order. */
  push(text: string): SseItem[] {
    const out: SseItem[] = [];
    const buf = this.buf + text;
    // A trailing CR may be half of a CRLF still in flight: keep it with the unfinished line.
    const held = buf.endsWith('\r') ? '\r' : '';
    const lines = (held ? buf.slice(0, -1) : buf).split(/\r\n|\r|\n/);
    this.buf = (lines.pop() ?? '') + held;
    for (const line of lines) {
      const item = line === '' ? this.pending.dispatch() : this.pending.line(line);
      if (item) out.push(item);
    }
    return out;
  }
}

/** The items of a `text/event-stream` body (a fetch response's), as they complete. */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseItem> {
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for await (const chunk of body) yield* parser.push(decoder.decode(chunk, { stream: true }));
  yield* parser.push(decoder.decode());
}
