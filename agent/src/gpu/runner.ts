import { execFile } from 'node:child_process';

/** What one command run came to. Exactly one of `missing`, `timedOut` or a `code` explains the end. */
export interface CommandResult {
  /** The exit code; null when the process was killed or never started. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** The command outlived its timeout and was sent SIGKILL. */
  timedOut: boolean;
  /** The binary does not exist (ENOENT). */
  missing: boolean;
  /**
   * Set only when a timed-out process had still not exited a moment after SIGKILL (a process stuck in
   * the kernel, as nvidia-smi is on a wedged driver, ignores even SIGKILL): settles when it finally
   * exits. Callers use it to avoid piling up more stuck processes.
   */
  exited?: Promise<void>;
}

/** Runs a command; the narrow side-effect interface the GPU collector is given (tests wrap or fake it). */
export interface CommandRunner {
  run(cmd: string, args: string[], timeoutMs: number): Promise<CommandResult>;
}

/** How long to wait for a SIGKILLed process to go before answering without it. */
const KILL_GRACE_MS = 250;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** The real runner, over `child_process.execFile` (no shell). `env` replaces the process environment. */
export class ExecFileRunner implements CommandRunner {
  constructor(private readonly env?: NodeJS.ProcessEnv) {}

  run(cmd: string, args: string[], timeoutMs: number): Promise<CommandResult> {
    return new Promise((resolve) => {
      let settled = false;
      let timedOut = false;
      let grace: NodeJS.Timeout | undefined;
      let markExited: () => void = () => {};
      const exited = new Promise<void>((r) => {
        markExited = r;
      });
      const finish = (result: CommandResult) => {
        if (settled) return;
        settled = true;
        resolve(result);
      };
      const child = execFile(
        cmd,
        args,
        { env: this.env ?? process.env, encoding: 'utf8', maxBuffer: MAX_OUTPUT_BYTES, windowsHide: true },
        (err, stdout, stderr) => {
          clearTimeout(timer);
          clearTimeout(grace);
          markExited();
          const e = err as (NodeJS.ErrnoException & { code?: string | number | null }) | null;
          const missing = e?.code === 'ENOENT';
          let code: number | null = 0;
          if (e) code = typeof e.code === 'number' ? e.code : null;
          const spawnError = e && !missing && typeof e.code === 'string' ? `${e.message}\n` : '';
          finish({
            code: timedOut || missing ? null : code,
            stdout: String(stdout ?? ''),
            stderr: spawnError + String(stderr ?? ''),
            timedOut,
            missing,
          });
        },
      );
      child.once('exit', () => markExited());
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
        grace = setTimeout(() => {
          finish({ code: null, stdout: '', stderr: '', timedOut: true, missing: false, exited });
        }, KILL_GRACE_MS);
      }, timeoutMs);
    });
  }
}
