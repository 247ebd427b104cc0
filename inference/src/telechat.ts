import type { ChatMessage } from './engine/types.js';

/**
 * TeleChat's dialog API (`service/telechat_service.py`): request rules and error codes kept as
 * the original defines them, so existing clients work unchanged.
 */
export const TELECHAT_CODES = {
  missingDialog: 10301,
  paramOutOfRange: 10305,
  generationFailed: 10903,
  badRoles: 10904,
} as const;

/** TeleChat's error body, as its clients parse it (`flag` 0: failed). */
export interface TelechatError {
  seqid: string;
  code: number;
  message: string;
  flag: number;
  data: Record<string, never>;
}

/** TeleChat's error body for one request (`seqid` echoed so clients can match it). */
export function telechatError(seqid: string, code: number, message: string): TelechatError {
  return { seqid, code, message, flag: 0, data: {} };
}

/** A validated TeleChat request, in generation terms. */
export interface TelechatParams {
  messages: ChatMessage[];
  sample: boolean;
  maxTokens: number;
  topK: number;
  topP: number;
  temperature: number;
  repeatPenalty: number;
}

/** TeleChat's generation defaults (its generation_config), used when a field is absent. */
const DEFAULTS = {
  do_sample: false,
  max_length: 2048,
  top_k: 5,
  top_p: 0.85,
  temperature: 0.3,
  repetition_penalty: 1.03,
};

type Check = (v: unknown) => boolean;
const isInt =
  (lo: number, hi: number): Check =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const openRange =
  (lo: number, hi: number): Check =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && v > lo && v < hi;

const RULES: [keyof typeof DEFAULTS, Check, string][] = [
  ['max_length', isInt(1, 4096), 'an integer in 1..4096'],
  ['top_k', isInt(1, 99), 'an integer in 1..99'],
  ['top_p', openRange(0, 1), 'a number in (0, 1)'],
  ['temperature', openRange(0, 1), 'a number in (0, 1)'],
  ['repetition_penalty', openRange(1, 100), 'a number in (1, 100)'],
];

/** Validates a v2/v4 body; returns the generation parameters or the TeleChat error to send. */
export function parseTelechat(
  body: unknown,
): { ok: true; params: TelechatParams } | { ok: false; code: number; message: string } {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  if (!Array.isArray(b.dialog) || b.dialog.length === 0) {
    return {
      ok: false,
      code: TELECHAT_CODES.missingDialog,
      message: 'dialog is required: a non-empty list of {role, content}',
    };
  }
  const messages: ChatMessage[] = [];
  // An optional system turn first (TeleChat2's chat template has one), then user/bot alternate.
  const first = (b.dialog[0] ?? {}) as Record<string, unknown>;
  const offset = first.role === 'system' ? 1 : 0;
  if (offset && typeof first.content !== 'string') {
    return {
      ok: false,
      code: TELECHAT_CODES.badRoles,
      message: 'dialog[0] must be {role: "system", content: string}',
    };
  }
  if (offset) messages.push({ role: 'system', content: first.content as string });
  for (const [j, turn] of b.dialog.slice(offset).entries()) {
    const i = j + offset;
    const t = (turn ?? {}) as Record<string, unknown>;
    const expected = j % 2 === 0 ? 'user' : 'bot';
    if (t.role !== expected || typeof t.content !== 'string') {
      return {
        ok: false,
        code: TELECHAT_CODES.badRoles,
        message: `dialog[${i}] must be {role: "${expected}", content: string}: roles alternate user/bot, starting with user (after an optional system turn)`,
      };
    }
    messages.push({ role: t.role === 'user' ? 'user' : 'assistant', content: t.content });
  }
  if (messages.at(-1)?.role !== 'user') {
    return { ok: false, code: TELECHAT_CODES.badRoles, message: 'the dialog must end with a user turn' };
  }
  if (b.do_sample !== undefined && typeof b.do_sample !== 'boolean') {
    return { ok: false, code: TELECHAT_CODES.paramOutOfRange, message: 'do_sample must be true or false' };
  }
  for (const [key, check, what] of RULES) {
    if (b[key] !== undefined && !check(b[key])) {
      return {
        ok: false,
        code: TELECHAT_CODES.paramOutOfRange,
        message: `${key} must be ${what}, got ${JSON.stringify(b[key])}`,
      };
    }
  }
  const v = { ...DEFAULTS, ...b } as typeof DEFAULTS;
  return {
    ok: true,
    params: {
      messages,
      sample: v.do_sample,
      maxTokens: v.max_length,
      topK: v.top_k,
      topP: v.top_p,
      temperature: v.temperature,
      repeatPenalty: v.repetition_penalty,
    },
  };
}
