import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { type AgentTls, enroll, mtlsCredentials } from '../../agent/src/enroll/client.js';
import { parseJoinToken } from '../../common/join-token.js';
import { createLogger } from '../../common/log.js';
import { fetchTrusting } from './https.js';

/** A running control plane as these helpers reach it: its REST URL, CA file and bootstrap admin token. */
interface ControlPlane {
  httpUrl: string;
  caFile: string;
  adminTokenFile: string;
}

/** A join token from a running control plane's REST API (`POST /v1/join-tokens`, as its admin). */
export async function createJoinToken(
  server: ControlPlane,
  body: { ttl?: string; labels?: Record<string, string> } = {},
): Promise<string> {
  const admin = readFileSync(server.adminTokenFile, 'utf8').trim();
  const res = await fetchTrusting(server.caFile)(`${server.httpUrl}/v1/join-tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`POST /v1/join-tokens: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/**
 * Enrolls `node` with a real control plane the way the agent does (GetCa, check, Enroll), in a
 * scratch folder, and returns its mutual-TLS material and channel credentials.
 */
export async function enrollNode(
  server: ControlPlane & { grpcAddress: string },
  node: string,
  labels: Record<string, string> = {},
): Promise<AgentTls & { credentials: grpc.ChannelCredentials; tlsDir: string }> {
  const parsed = parseJoinToken(await createJoinToken(server));
  if (!parsed.ok) throw new Error(parsed.message);
  const tlsDir = mkdtempSync(join(tmpdir(), `fleet-tls-${node}-`));
  const tls = await enroll({
    address: server.grpcAddress,
    node,
    token: parsed.token,
    labels,
    tlsDir,
    log: createLogger('test', 'silent'),
  });
  return { ...tls, credentials: mtlsCredentials(tls, server.grpcAddress), tlsDir };
}
