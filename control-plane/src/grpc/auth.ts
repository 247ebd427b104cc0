import { createHash, timingSafeEqual } from 'node:crypto';
import type { Metadata, ServerDuplexStream } from '@grpc/grpc-js';
import { NODE_NAME } from '../../../common/node-name.js';

/** Who is on the other end of an agent stream, as proven by the transport, never by a message. */
export interface AgentIdentity {
  node: string;
}

export type AuthResult = { ok: true; identity: AgentIdentity } | { ok: false; message: string };

/**
 * Derives an agent's identity from the call. Today: a shared agent token plus the node name in
 * metadata. Mutual TLS (a later issue) replaces this with the node name from the client
 * certificate; the stream logic above it does not change.
 */
export interface AgentAuthenticator {
  authenticate(call: ServerDuplexStream<unknown, unknown>): AuthResult;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** `authorization: Bearer <agent token>` and `x-fleet-node: <name>`, compared in constant time. */
export class TokenAuthenticator implements AgentAuthenticator {
  private readonly expected: Buffer;

  constructor(token: string) {
    if (token.length < 16) throw new Error('agent token must be at least 16 characters');
    this.expected = digest(token);
  }

  authenticate(call: { metadata: Metadata }): AuthResult {
    const auth = String(call.metadata.get('authorization')[0] ?? '');
    const node = String(call.metadata.get('x-fleet-node')[0] ?? '');
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!token || !timingSafeEqual(digest(token), this.expected)) {
      return { ok: false, message: 'invalid or missing agent token' };
    }
    if (!NODE_NAME.test(node)) return { ok: false, message: `invalid node name ${JSON.stringify(node)}` };
    return { ok: true, identity: { node } };
  }
}
