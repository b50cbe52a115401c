import { WardError } from '../../identity/index.js';

/** A CLI usage error: bad flags or arguments. Printed without a stack, exit status 2. */
export class UsageError extends WardError {}

/** What a subcommand gets: its own argv (after the command words) and output streams. */
export interface CommandContext {
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export interface Command {
  /** Command words, e.g. ['identity', 'list']. */
  readonly path: readonly string[];
  /** One line for `ward --help`. */
  readonly summary: string;
  /** Full usage text for `ward <path> --help`. */
  readonly usage: string;
  /** Returns the exit status. */
  run(ctx: CommandContext): Promise<number>;
}
