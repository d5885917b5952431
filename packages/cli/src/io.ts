/** What a command may touch of the outside world; tests pass their own. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Whether stdout is a terminal (colour, human formats). */
  isTty: boolean;
  /** Whether stderr, where a running role logs, is a terminal (text logs; `up` shows warnings only). */
  errIsTty?: boolean;
}

export function processIo(): CliIo {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    isTty: process.stdout.isTTY === true,
    errIsTty: process.stderr.isTTY === true,
  };
}

/** Exit codes of every command. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/**
 * `picluster nodes | head -1`: the reader has what it wanted and closed the
 * pipe. Node ignores SIGPIPE, so the next write fails with EPIPE, which an
 * output stream raises as an unhandled 'error' (a stack trace). Exit 0 at
 * once instead, quietly, as a program killed by SIGPIPE would have stopped
 * (0 rather than 141: nothing went wrong for whoever piped us). Any other
 * write error still ends the process, with one line and exit 1.
 */
export function exitQuietlyOnClosedPipe(
  streams: readonly NodeJS.WriteStream[] = [process.stdout, process.stderr],
  exit: (code: number) => never = process.exit,
): void {
  for (const stream of streams) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") exit(EXIT_OK);
      // stderr may be the broken one: say it where it can still be read, if anywhere.
      try {
        process.stderr.write(`error: cannot write output: ${err.message}\n`);
      } finally {
        exit(EXIT_FAILED);
      }
    });
  }
}
