/**
 * The raw grpc-js floor for the scale benchmark (scale.ts): what the same machine does with no
 * fleet code at all. A minimal server process holds N plain bidirectional streams (one HTTP/2
 * connection each, from client processes), and on request writes one message of a given size to
 * every stream and counts the acknowledgements. Clients send a hello, a 16-byte heartbeat every
 * 2 s (the agent's rate) and an ack for each message, with the agent's keepalive. No TLS, no
 * protobuf, no database: every figure of fleet at N agents is divided by the floor's at N streams.
 *
 * One file, three roles: FLOOR_ROLE=server | clients (children), or imported by the parent.
 * Parent → server (IPC): {kind:'count'} → {kind:'count', n}; {kind:'push', bytes} →
 *   {kind:'push', acked, firstMs, lastMs} (ms after the writes began) once all acked or after 60 s.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';

const SELF = fileURLToPath(import.meta.url);
const passthrough = (b: Buffer) => b;
const SERVICE: grpc.ServiceDefinition = {
  connect: {
    path: '/floor.Floor/Connect',
    requestStream: true,
    responseStream: true,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  },
};
const KEEPALIVE = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
};

type Msg = { kind: 'count' } | { kind: 'push'; bytes: number };

async function serve() {
  const streams = new Set<grpc.ServerDuplexStream<Buffer, Buffer>>();
  let acks = 0;
  let firstAck = 0;
  let lastAck = 0;
  const server = new grpc.Server({ ...KEEPALIVE, 'grpc.http2.min_ping_interval_without_data_ms': 5_000 });
  server.addService(SERVICE, {
    connect: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (b: Buffer) => {
        if (b[0] === 1) streams.add(call);
        else if (b[0] === 3) {
          acks++;
          lastAck = performance.now();
          firstAck ||= lastAck;
        }
      });
      const gone = () => streams.delete(call);
      call.on('end', gone);
      call.on('error', gone);
      call.on('cancelled', gone);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  process.send?.({ kind: 'port', port });
  process.on('message', async (m: Msg) => {
    if (m.kind === 'count') return process.send?.({ kind: 'count', n: streams.size });
    const body = Buffer.alloc(m.bytes, 7);
    acks = 0;
    firstAck = 0;
    const t0 = performance.now();
    for (const s of streams) s.write(body);
    const want = streams.size;
    for (let i = 0; i < 6_000 && acks < want; i++) await new Promise((r) => setTimeout(r, 10));
    process.send?.({ kind: 'push', acked: acks, firstMs: firstAck - t0, lastMs: lastAck - t0 });
  });
  process.on('disconnect', () => process.exit(0));
}

function clients() {
  const { address, count } = JSON.parse(process.env.FLOOR_CLIENTS ?? '{}') as {
    address: string;
    count: number;
  };
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'Floor');
  let i = 0;
  const one = () => {
    const c = new Client(address, grpc.credentials.createInsecure(), {
      ...KEEPALIVE,
      'grpc.use_local_subchannel_pool': 1,
    });
    const call = (c as unknown as { connect(): grpc.ClientDuplexStream<Buffer, Buffer> }).connect();
    call.on('error', () => {});
    call.on('data', () => call.write(Buffer.from([3])));
    call.write(Buffer.from([1]));
    setInterval(() => call.write(Buffer.alloc(16, 2)), 2_000);
  };
  // 50 dials every 10 ms: the same pace for every N, bounded by the count.
  const pace = setInterval(() => {
    for (let k = 0; k < 50 && i < count; k++, i++) one();
    if (i >= count) clearInterval(pace);
  }, 10);
  process.on('disconnect', () => process.exit(0));
}

/** A running floor: the server process, its clients, and the parent's requests to it. */
export class Floor {
  private constructor(
    readonly server: ChildProcess,
    private readonly children: ChildProcess[],
  ) {}

  static async start(n: number, procs: number): Promise<Floor> {
    const server = fork(SELF, [], { env: { ...process.env, FLOOR_ROLE: 'server' }, stdio: 'inherit' });
    const { port } = await reply<{ port: number }>(server, 'port');
    const per = Math.ceil(n / procs);
    const children = Array.from({ length: procs }, (_, p) =>
      fork(SELF, [], {
        env: {
          ...process.env,
          FLOOR_ROLE: 'clients',
          FLOOR_CLIENTS: JSON.stringify({ address: `127.0.0.1:${port}`, count: Math.min(per, n - p * per) }),
        },
        stdio: 'inherit',
      }),
    );
    return new Floor(server, children);
  }

  async count(): Promise<number> {
    this.server.send({ kind: 'count' });
    return (await reply<{ n: number }>(this.server, 'count')).n;
  }

  async push(bytes: number): Promise<{ acked: number; firstMs: number; lastMs: number }> {
    this.server.send({ kind: 'push', bytes });
    return reply(this.server, 'push', 70_000);
  }

  close() {
    for (const c of [...this.children, this.server]) if (c.exitCode === null) c.kill('SIGKILL');
  }
}

function reply<T>(child: ChildProcess, kind: string, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`floor server: no ${kind} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const on = (m: { kind: string } & T) => {
      if (m.kind !== kind) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
  });
}

if (process.env.FLOOR_ROLE === 'server') await serve();
else if (process.env.FLOOR_ROLE === 'clients') clients();
