/**
 * The few Docker operations the proxy driver needs beyond create/start/remove: run a command in a
 * container and collect its output, run a throwaway container to completion, pull an image. Every
 * call is bounded: a hung daemon must not hang the agent's reconcile loop.
 */
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';

/** Rejects when `p` takes longer than `ms` (the Docker request itself may linger; we stop waiting). */
export async function bounded<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`docker: ${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const statusOf = (err: unknown) => (err as { statusCode?: number }).statusCode;

export interface CommandResult {
  exitCode: number;
  /** stdout and stderr together, in arrival order. */
  output: string;
}

/** Docker's multiplexed stream format (non-TTY): 8-byte frame headers, payload length at 4..8. */
export function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Runs `cmd` in a running container (`docker exec`) and waits for it, within `ms`. */
export async function execIn(
  docker: Docker,
  containerId: string,
  cmd: string[],
  ms: number,
): Promise<CommandResult> {
  const run = async () => {
    const exec = await docker.getContainer(containerId).exec({
      Cmd: cmd,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    docker.modem.demuxStream(stream, sink, sink);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8') };
  };
  return bounded(`exec ${cmd[0]} in ${containerId.slice(0, 12)}`, ms, run());
}

/** Creates, runs to completion and removes a container; its exit code and output. */
export async function runToCompletion(
  docker: Docker,
  options: Docker.ContainerCreateOptions,
  ms: number,
): Promise<CommandResult> {
  const container = await bounded('create check container', ms, docker.createContainer(options));
  try {
    await bounded('start check container', ms, container.start());
    const waited = (await bounded('wait check container', ms, container.wait())) as { StatusCode: number };
    const logs = (await bounded(
      'logs of check container',
      ms,
      container.logs({ stdout: true, stderr: true, follow: false }),
    )) as unknown as Buffer;
    return { exitCode: waited.StatusCode, output: demux(logs) };
  } finally {
    await bounded('remove check container', ms, container.remove({ force: true })).catch(() => {});
  }
}

/** Pulls `image` unless it is present; the pull's progress stream keeps it alive, within `ms`. */
export async function ensureImage(docker: Docker, image: string, ms: number): Promise<void> {
  try {
    await bounded(`inspect image ${image}`, ms, docker.getImage(image).inspect());
    return;
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
  const pull = async () => {
    const stream = await docker.pull(image);
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, output: { error?: string }[]) => {
        const failed = err?.message ?? output?.find((o) => o.error)?.error;
        if (failed) reject(new Error(`pull ${image}: ${failed}`));
        else resolve();
      }),
    );
  };
  await bounded(`pull ${image}`, ms, pull());
}
