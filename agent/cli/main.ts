import { UsageError, type Command, type CommandContext } from './command.js';
import { COMMANDS } from './commands.js';

function topHelp(commands: readonly Command[]): string {
  const lines = commands.map((c) => `  ward ${c.path.join(' ').padEnd(22)} ${c.summary}`);
  return [
    'ward: network policy for bare-metal clusters (etcd identities, Cilium-compatible rules, eBPF).',
    '',
    'Usage: ward <command> [flags]   (ward <command> --help for its flags)',
    '',
    'Commands:',
    ...lines,
    '',
    'Environment: WARD_ETCD_ENDPOINTS=host:port,... (default 127.0.0.1:2379), WARD_LOG_LEVEL.',
    '',
  ].join('\n');
}

/** Finds the longest command path that prefixes argv. */
function resolve(commands: readonly Command[], argv: readonly string[]): { cmd: Command; rest: string[] } | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.path.length <= argv.length && c.path.every((w, i) => argv[i] === w)) {
      if (best === undefined || c.path.length > best.path.length) best = c;
    }
  }
  return best && { cmd: best, rest: argv.slice(best.path.length) };
}

export async function runCli(argv: readonly string[], io: Omit<CommandContext, 'argv'>, commands: readonly Command[] = COMMANDS): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout.write(topHelp(commands));
    return argv.length === 0 ? 2 : 0;
  }
  const found = resolve(commands, argv);
  if (found === undefined) {
    const group = commands.filter((c) => c.path[0] === argv[0]);
    io.stderr.write(`ward: unknown command ${JSON.stringify(argv.join(' '))}\n\n`);
    io.stderr.write(topHelp(group.length > 0 ? group : commands));
    return 2;
  }
  // Words after `--` belong to another program (`ward dev exec web -- curl --help`).
  const sep = found.rest.indexOf('--');
  const own = sep < 0 ? found.rest : found.rest.slice(0, sep);
  if (own.includes('--help') || own.includes('-h')) {
    io.stdout.write(found.cmd.usage.endsWith('\n') ? found.cmd.usage : `${found.cmd.usage}\n`);
    return 0;
  }
  try {
    return await found.cmd.run({ ...io, argv: found.rest });
  } catch (err) {
    const usage = err instanceof UsageError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'));
    const msg = err instanceof Error ? err.message : String(err);
    io.stderr.write(`ward ${found.cmd.path.join(' ')}: ${msg}\n`);
    if (usage) io.stderr.write(`\n${found.cmd.usage}\n`);
    else if (io.env['WARD_DEBUG'] === '1' && err instanceof Error && err.stack !== undefined) io.stderr.write(`${err.stack}\n`);
    return usage ? 2 : 1;
  }
}

export async function main(): Promise<void> {
  // `ward ... | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const code = await runCli(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
  process.exitCode = code;
}
