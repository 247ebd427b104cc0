/**
 * The real engine: GGUF models through node-llama-cpp (llama.cpp), CPU or GPU.
 *
 * One model, one context with `parallel` sequences; every request gets its own sequence and a LlamaChat on
 * it, both disposed when the request ends (done, failed or aborted), which frees the slot at once.
 * Only prebuilt binaries are used (`build: 'never'`, `skipDownload: true`): nothing is built or downloaded.
 */
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ChatHistoryItem,
  type ChatWrapper,
  getLlama,
  type Llama,
  LlamaChat,
  type LlamaContext,
  type LlamaContextSequence,
  LlamaLogLevel,
  type LlamaModel,
  readGgufFileInfo,
  resolveChatWrapper,
} from 'node-llama-cpp';
import {
  type ChatMessage,
  type Engine,
  EngineError,
  type EngineInfo,
  type GenerateRequest,
  type GenerateResult,
} from './types.js';

/** Sampling temperature used when a sampled request leaves `temperature` undefined (llama.cpp's default). */
export const DEFAULT_TEMPERATURE = 0.8;

/** What the in-process engine needs from Config (main.ts maps it), plus where its log goes. */
export interface LlamaCppEngineOptions {
  modelPath: string;
  /** tokens per sequence (each of the `parallel` sequences gets this many) */
  contextSize: number;
  parallel: number;
  /** layers to offload to the GPU; 0 → CPU only (no GPU backend is even probed) */
  gpuLayers: number | 'auto';
  log?: (obj: object, msg: string) => void;
  /**
   * CPU threads per evaluation; default node-llama-cpp's (the CPU's math cores). Tiny models on busy
   * machines run far faster with 1 (threads spin-wait on each other).
   */
  threads?: number;
  /** temperature for sampled requests that do not set one; default DEFAULT_TEMPERATURE */
  defaultTemperature?: number;
}

type LogSink = (level: LlamaLogLevel, text: string) => void;
/** llama.cpp's log goes to every loaded engine's sink (there is one native logger per process). */
const logSinks = new Set<LogSink>();
const llamas = new Map<boolean, Promise<Llama>>();

/**
 * One Llama (the native binding) per process and GPU mode, never disposed: node-llama-cpp loads the binding
 * once per process, and after a Llama is disposed a new one no longer receives llama.cpp's log (it goes to
 * stdout instead), so engines share one. Only prebuilt binaries: `build: 'never'`, `skipDownload: true`.
 */
function sharedLlama(gpu: boolean): Promise<Llama> {
  let llama = llamas.get(gpu);
  if (!llama) {
    llama = getLlama({
      build: 'never',
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      gpu: gpu ? 'auto' : false,
      // no process-wide cap: each context sets its own thread count
      maxThreads: 0,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text) for (const sink of logSinks) sink(level, text);
      },
    });
    llama.catch(() => llamas.delete(gpu));
    llamas.set(gpu, llama);
  }
  return llama;
}

/** How long a request waits for a sequence freed a moment ago (see generate()). */
const SEQUENCE_WAIT_MS = 1_000;

/**
 * A GGUF model in this process through node-llama-cpp: one context of `parallel` sequences, so
 * that many generations run at once without loading the weights twice.
 */
export class LlamaCppEngine implements Engine {
  private readonly opts: LlamaCppEngineOptions;
  private llama: Llama | undefined;
  private model: LlamaModel | undefined;
  private context: LlamaContext | undefined;
  /** resolved once from the model's metadata (chat template) and shared by all requests */
  private chatWrapper: ChatWrapper | undefined;
  private closed = false;
  private backend = 'unloaded';
  private actualContextSize: number;
  private actualGpuLayers: number | 'auto';
  private sink: LogSink | undefined;
  /** recent llama.cpp error lines, quoted in load errors (llama.cpp's own exception says only "Failed to load model") */
  private llamaErrors: string[] = [];

  constructor(opts: LlamaCppEngineOptions) {
    if (!Number.isInteger(opts.parallel) || opts.parallel < 1) {
      throw new EngineError(`parallel must be an integer ≥ 1, got ${opts.parallel}`, 'load');
    }
    if (!Number.isInteger(opts.contextSize) || opts.contextSize < 1) {
      throw new EngineError(`contextSize must be an integer ≥ 1, got ${opts.contextSize}`, 'load');
    }
    this.opts = opts;
    this.actualContextSize = opts.contextSize;
    this.actualGpuLayers = opts.gpuLayers;
  }

  /** After load(): contextSize and gpuLayers are what llama.cpp actually uses, backend 'cpu' | 'cuda' | 'vulkan' | 'metal'. */
  get info(): EngineInfo {
    return {
      name: basename(this.opts.modelPath).replace(/\.gguf$/i, ''),
      path: this.opts.modelPath,
      contextSize: this.actualContextSize,
      parallel: this.opts.parallel,
      gpuLayers: this.actualGpuLayers,
      backend: this.backend,
    };
  }

  private log(obj: object, msg: string) {
    this.opts.log?.(obj, msg);
  }

  async load(): Promise<void> {
    if (this.closed) throw new EngineError('engine is closed', 'load');
    if (this.model) return;
    const path = this.opts.modelPath;
    const arch = await checkGguf(path);
    const started = Date.now();

    this.sink = (level, text) => {
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) {
        this.llamaErrors.push(text);
        if (this.llamaErrors.length > 10) this.llamaErrors.shift();
      }
      this.log({ level, source: 'llama.cpp' }, text);
    };
    logSinks.add(this.sink);
    try {
      this.llama = await sharedLlama(this.opts.gpuLayers !== 0);
    } catch (err) {
      this.closeSink();
      throw new EngineError(
        `llama.cpp native binary could not be loaded (node-llama-cpp prebuilt binaries for ${process.platform}-${process.arch}; ` +
          `nothing is built or downloaded at run time): ${errMessage(err)}`,
        'load',
      );
    }
    this.backend = this.llama.gpu === false ? 'cpu' : this.llama.gpu;

    this.llamaErrors = [];
    try {
      this.model = await this.llama.loadModel({ modelPath: path, gpuLayers: this.opts.gpuLayers });
    } catch (err) {
      // llama.cpp's log lines arrive through a thread-safe callback, after the rejection: let them in
      await sleep(50);
      const detail = [...new Set(this.llamaErrors)].join('; ') || errMessage(err);
      await this.disposeAll();
      if (/unknown model architecture/i.test(detail)) {
        throw new EngineError(
          `unsupported model architecture '${arch}' in ${path} (llama.cpp: ${detail})`,
          'load',
        );
      }
      throw new EngineError(`failed to load model ${path} (architecture '${arch}'): ${detail}`, 'load');
    }

    try {
      this.context = await this.model.createContext({
        contextSize: this.opts.contextSize,
        sequences: this.opts.parallel,
        threads: this.opts.threads ?? this.llama.cpuMathCores,
      });
    } catch (err) {
      await this.disposeAll();
      throw new EngineError(
        `could not create a context of ${this.opts.contextSize} tokens × ${this.opts.parallel} sequences for ${path}: ${errMessage(err)}`,
        'load',
      );
    }
    this.chatWrapper = resolveChatWrapper(this.model);
    this.actualContextSize = this.context.contextSize;
    this.actualGpuLayers = this.model.gpuLayers;
    this.log(
      {
        path,
        architecture: arch,
        backend: this.backend,
        gpuLayers: this.model.gpuLayers,
        contextSize: this.context.contextSize,
        chatWrapper: this.chatWrapper.wrapperName,
        parallel: this.opts.parallel,
        ms: Date.now() - started,
      },
      'model loaded',
    );
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const context = this.context;
    if (!context || this.closed) throw new EngineError('model is not loaded', 'generate');
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) {
      throw new EngineError(`maxTokens must be an integer ≥ 1, got ${req.maxTokens}`, 'generate');
    }
    if (req.messages.length === 0) throw new EngineError('messages must not be empty', 'generate');
    if (req.signal.aborted) return { promptTokens: 0, completionTokens: 0, finishReason: 'aborted' };

    // A sequence disposed by the request before this one is handed back asynchronously: admission
    // already keeps at most `parallel` requests here, so a short wait always finds one.
    for (let waited = 0; context.sequencesLeft === 0 && waited < SEQUENCE_WAIT_MS; waited += 2) {
      await new Promise((r) => setTimeout(r, 2));
    }
    let sequence: LlamaContextSequence;
    try {
      sequence = context.getSequence();
    } catch (err) {
      throw new EngineError(
        `no free sequence (parallel ${this.opts.parallel}): ${errMessage(err)}`,
        'generate',
      );
    }
    const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: this.chatWrapper ?? 'auto' });
    const counts = () => ({
      promptTokens: sequence.tokenMeter.usedInputTokens,
      completionTokens: sequence.tokenMeter.usedOutputTokens,
    });
    const temperature = !req.sample
      ? 0
      : (req.temperature ?? this.opts.defaultTemperature ?? DEFAULT_TEMPERATURE);
    try {
      const res = await chat.generateResponse(toHistory(req.messages), {
        maxTokens: req.maxTokens,
        temperature,
        ...(temperature > 0 && req.topP !== undefined ? { topP: req.topP } : {}),
        ...(temperature > 0 && req.topK !== undefined ? { topK: req.topK } : {}),
        ...(req.repeatPenalty !== undefined ? { repeatPenalty: { penalty: req.repeatPenalty } } : {}),
        signal: req.signal,
        stopOnAbortSignal: true,
        onTextChunk: (text) => {
          if (text) req.onText(text);
        },
      });
      const reason = res.metadata.stopReason;
      const finishReason =
        req.signal.aborted || reason === 'abort' ? 'aborted' : reason === 'maxTokens' ? 'length' : 'stop';
      return { ...counts(), finishReason };
    } catch (err) {
      if (req.signal.aborted) return { ...counts(), finishReason: 'aborted' };
      throw new EngineError(`generation failed: ${errMessage(err)}`, 'generate');
    } finally {
      chat.dispose({ disposeSequence: false });
      sequence.dispose();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.disposeAll();
  }

  /** Frees the context and the model; the process-wide Llama stays (see sharedLlama). */
  private async disposeAll() {
    const { context, model } = this;
    this.context = undefined;
    this.chatWrapper = undefined;
    this.model = undefined;
    this.llama = undefined;
    await context?.dispose();
    await model?.dispose();
    this.closeSink();
  }

  private closeSink() {
    if (this.sink) logSinks.delete(this.sink);
    this.sink = undefined;
  }
}

/**
 * Checks that `path` is a readable GGUF file and returns its architecture, with errors that say what is
 * wrong (llama.cpp's own say only "Failed to load model").
 */
async function checkGguf(path: string): Promise<string> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new EngineError(`model path is not a file: ${path}`, 'load');
  } catch (err) {
    if (err instanceof EngineError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new EngineError(`model file not found: ${path}`, 'load');
    throw new EngineError(`model file not readable: ${path}: ${errMessage(err)}`, 'load');
  }
  const magic = Buffer.alloc(4);
  let read = 0;
  try {
    const fh = await open(path, 'r');
    try {
      ({ bytesRead: read } = await fh.read(magic, 0, 4, 0));
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw new EngineError(`model file not readable: ${path}: ${errMessage(err)}`, 'load');
  }
  if (read < 4 || magic.toString('latin1') !== 'GGUF') {
    throw new EngineError(
      `not a GGUF file: ${path} (starts with ${JSON.stringify(magic.subarray(0, read).toString('latin1'))}, expected "GGUF")`,
      'load',
    );
  }
  try {
    const info = await readGgufFileInfo(path, { readTensorInfo: false, logWarnings: false });
    return String(info.metadata.general?.architecture ?? 'unknown');
  } catch (err) {
    throw new EngineError(`invalid GGUF file: ${path}: ${errMessage(err)}`, 'load');
  }
}

/** All messages but the last user message become history; the last user message is the prompt. */
function toHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (const m of messages) {
    if (m.role === 'system') history.push({ type: 'system', text: m.content });
    else if (m.role === 'user') history.push({ type: 'user', text: m.content });
    else history.push({ type: 'model', response: [m.content] });
  }
  // The model answers after the last message; when that is an assistant message, it continues it.
  if (history.at(-1)?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
