/** One turn, in the roles every engine takes (TeleChat's bot and OpenAI's developer are mapped to these). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
/** One generation, protocol-free: both TeleChat and OpenAI requests become this. */
export interface GenerateRequest {
  messages: ChatMessage[];
  maxTokens: number;
  /** undefined → engine default; 0 → greedy */
  temperature?: number;
  topP?: number;
  topK?: number;
  repeatPenalty?: number;
  /** false → greedy decoding regardless of temperature */
  sample: boolean;
  signal: AbortSignal;
  /** called with each piece of text as soon as it is generated */
  onText: (text: string) => void;
  /**
   * OpenAI chat-completion fields the client sent that this server does not interpret itself (stop,
   * seed, penalties...): an engine that speaks OpenAI forwards them as they are; others ignore them.
   */
  passthrough?: Record<string, unknown>;
}
/** What usage and finish_reason are answered from, and what metrics count. */
export interface GenerateResult {
  promptTokens: number;
  completionTokens: number;
  finishReason: 'stop' | 'length' | 'aborted';
}
/** What /health, /v1/models and the routes read about the engine (the upstream's fills in after load). */
export interface EngineInfo {
  name: string;
  path: string;
  contextSize: number;
  parallel: number;
  gpuLayers: number | 'auto';
  backend: string;
}
/** What /health reports for an engine whose readiness can change after it loaded. */
export interface EngineReadiness {
  ready: boolean;
  /** why it is not ready (shown as /health's `error`) */
  reason?: string;
  /** extra fields for /health (the upstream engine: its URL, model, last check) */
  detail?: Record<string, unknown>;
}
/** What the server generates with: in-process (llama-cpp.ts) or an upstream server (openai-upstream.ts). */
export interface Engine {
  readonly info: EngineInfo;
  /**
   * Engines whose readiness can change after load() (a remote engine that goes away and comes back):
   * the current readiness, from background checks (it must be cheap: /health calls it every time).
   * Absent: the engine is ready from the moment load() resolves until close().
   */
  readiness?(): EngineReadiness;
  /** loads the model; rejects with a clear Error (file missing, not GGUF, unsupported architecture) */
  load(): Promise<void>;
  /** runs one generation; at most `info.parallel` at once (the caller enforces it) */
  generate(req: GenerateRequest): Promise<GenerateResult>;
  close(): Promise<void>;
}
/**
 * How a generation that failed before any text is answered when it is not the engine's fault: the
 * engine is unavailable (503), busy (429), or refused the request as invalid (400). Both come with
 * Retry-After where it applies. Without a refusal a failure is a 500 (TeleChat 10903).
 */
export interface Refusal {
  as: 'unavailable' | 'busy' | 'invalid';
  retryAfterS?: number;
}
/** An engine's failure: `kind` says whether loading or generating failed; `refusal` how to answer it. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly kind: 'load' | 'generate',
    readonly refusal?: Refusal,
  ) {
    super(message);
  }
}
