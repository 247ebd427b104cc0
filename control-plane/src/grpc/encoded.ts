import { AgentServiceService, ControlMessage, type DesiredState } from '../../../proto/gen/fleet/v1/agent.js';

/**
 * A control message already encoded to its wire bytes. An apply to 10,000 nodes that share one
 * desired state encodes it once and writes the same bytes to every stream (xDS servers do the
 * same), instead of 10,000 encodings of identical objects.
 */
export class EncodedMessage {
  constructor(readonly bytes: Buffer) {}
}

/** Encodings by the (shared, immutable) desired-state object they were made from. */
const byState = new WeakMap<DesiredState, EncodedMessage>();

/** The `desired` message for `state`, encoded once per state object. */
export function encodedDesired(state: DesiredState): EncodedMessage {
  let hit = byState.get(state);
  if (!hit) {
    const msg: ControlMessage = { msg: { $case: 'desired', desired: state } };
    hit = new EncodedMessage(Buffer.from(ControlMessage.encode(msg).finish()));
    byState.set(state, hit);
  }
  return hit;
}

const connect = AgentServiceService.connect;

/**
 * The agent service as the server registers it: its response serializer passes pre-encoded bytes
 * through and encodes everything else as generated. Only the Connect stream carries them.
 */
export const AgentServiceWire = {
  ...AgentServiceService,
  connect: {
    ...connect,
    responseSerialize: (value: ControlMessage | EncodedMessage): Buffer =>
      value instanceof EncodedMessage ? value.bytes : connect.responseSerialize(value),
  },
} as const;
