import { Writable } from 'node:stream';
import { runCli } from '../../agent/cli/main.js';

export interface CliResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** A writable that keeps what is written, for an in-process CLI run. */
export function captureStream(): { readonly stream: Writable; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

/** Runs `ward ARGV` in-process with the given environment and returns its status and output. */
export async function runWard(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const out = captureStream();
  const err = captureStream();
  const code = await runCli(argv, { env, stdout: out.stream, stderr: err.stream });
  return { code, out: out.text(), err: err.text() };
}
