/**
 * `fleet server` and its `install`/`uninstall`: the control plane's daemon command, apart from the
 * client commands (commands.ts) so a client command line (`fleet apply`) loads neither its
 * definitions nor what they import (systemd units, retention flags); commands.ts adds it when the
 * command line names it or names none.
 */
import { type Command, Option } from 'commander';
import { arg, CliError, untilSignal, volumeRootsOption } from '../../../common/cli.js';
import { parseDuration } from '../../../common/duration.js';
import { DEFAULT_SILENCE_MS } from '../ingest/liveness.js';
import { addServerInstallCommands, SERVER_DEFAULTS } from '../install.js';
import { addRetentionOptions, retentionOptions } from './retention-flags.js';

/** `fleet server`: the control plane process with its listen addresses and limits. */
export function addServerCommand(program: Command) {
  const server = program
    .command('server')
    .description('run the control plane: REST API, agent gRPC endpoint, SQLite store')
    // `fleet server install --listen ...`: its own flags go to install, not to the daemon's.
    .enablePositionalOptions()
    .option(
      '--data-dir <dir>',
      'where the SQLite file, the CA (ca.crt, ca.key) and the server certificate live',
      process.env.FLEET_DATA_DIR ?? SERVER_DEFAULTS.dataDir,
    )
    .option('--listen <host:port>', 'REST API address', SERVER_DEFAULTS.listen)
    .option('--grpc-listen <host:port>', 'agent stream address', SERVER_DEFAULTS.grpcListen)
    .option(
      '--tls-name <names>',
      'comma-separated extra DNS names or addresses for the server certificate',
      '',
    )
    .option(
      '--tls-cert <file>',
      "the REST API's certificate (PEM, chain after the leaf); default: one issued from the CA",
    )
    .option('--tls-key <file>', 'the key of --tls-cert (PEM)')
    .addOption(
      // A test knob (renewal end to end in seconds); production keeps the 30-day default.
      new Option('--agent-cert-lifetime <duration>', 'lifetime of issued agent certificates')
        .argParser(arg(parseDuration))
        .hideHelp(),
    )
    .addOption(volumeRootsOption('comma-separated host directories playbooks may bind-mount'))
    .option('--body-limit <bytes>', 'largest REST request body (413 above it)', arg(parseCount), 1024 * 1024)
    .option('--rate-limit <n>', 'REST requests per minute per API token (429 above it)', arg(parseCount), 600)
    .option(
      '--grpc-max-message <bytes>',
      'largest message an agent may send (RESOURCE_EXHAUSTED above it)',
      arg(parseCount),
      4 * 1024 * 1024,
    )
    .option(
      '--agent-silence <duration>',
      'an agent stream silent this long counts offline (agents beat every 2 s by default)',
      arg(parseDuration),
      DEFAULT_SILENCE_MS,
    );
  addRetentionOptions(server).action(async (o) => {
    // Daemons load lazily so client commands start fast (no gRPC, SQLite or Docker modules).
    const { runServer } = await import('../server.js');
    const { TlsFilesError } = await import('../pki/server-tls.js');
    const s = await runServer({
      dataDir: o.dataDir,
      listen: o.listen,
      grpcListen: o.grpcListen,
      tlsNames: String(o.tlsName)
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean),
      tlsCertFile: o.tlsCert,
      tlsKeyFile: o.tlsKey,
      agentCertLifetimeMs: o.agentCertLifetime,
      agentSilenceMs: o.agentSilence,
      bodyLimit: o.bodyLimit,
      rateLimitPerMinute: o.rateLimit,
      grpcMaxMessageBytes: o.grpcMaxMessage,
      volumeRoots: o.volumeRoots,
      ...(await retentionOptions(o)),
    }).catch((err: Error) => {
      throw err instanceof TlsFilesError ? new CliError(err.message, 2) : err;
    });
    const restCert = s.restCertificate === 'files' ? o.tlsCert : `issued from the CA, ${s.serverCertFile}`;
    process.stderr.write(
      `fleet server: REST ${s.httpUrl} (TLS: ${restCert}), agents ${s.grpcAddress} (mutual TLS), CA ${s.caFile}, admin token in ${s.adminTokenFile}\n` +
        `  clients: fleet login --server ${s.httpUrl} --token-file ${s.adminTokenFile} --ca-file ${s.caFile}\n` +
        `  enroll a host: fleet join-token create, then fleet agent --join-token <token>\n`,
    );
    untilSignal(() => s.close());
  });
  addServerInstallCommands(server);
}

function parseCount(v: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(v))
    throw new Error(`invalid number ${JSON.stringify(v)} (a whole number ≥ 1)`);
  return Number(v);
}
