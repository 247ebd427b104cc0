export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
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
}
export interface GenerateResult {
  promptTokens: number;
  completionTokens: number;
  finishReason: 'stop' | 'length' | 'aborted';
}
export interface EngineInfo {
  name: string;
  path: string;
  contextSize: number;
  parallel: number;
  gpuLayers: number | 'auto';
  backend: string;
}
export interface Engine {
  readonly info: EngineInfo;
  /** loads the model; rejects with a clear Error (file missing, not GGUF, unsupported architecture) */
  load(): Promise<void>;
  /** runs one generation; at most `info.parallel` at once (the caller enforces it) */
  generate(req: GenerateRequest): Promise<GenerateResult>;
  close(): Promise<void>;
}
export class EngineError extends Error {
  constructor(
    message: string,
    readonly kind: 'load' | 'generate',
  ) {
    super(message);
  }
}
