import { describe, expect, it } from 'vitest';
import { runCli } from '../../agent/cli/main.js';
import { UsageError, type Command } from '../../agent/cli/command.js';
import { captureStream as sink } from '../helpers/cli.js';

const echo: Command = {
  path: ['demo', 'echo'],
  summary: 'prints its arguments',
  usage: 'Usage: ward demo echo ARGS...',
  run: async (ctx) => {
    if (ctx.argv.includes('--bad')) throw new UsageError('unknown flag --bad');
    if (ctx.argv.includes('--fail')) throw new Error('etcd unreachable');
    ctx.stdout.write(ctx.argv.join(' '));
    return 0;
  },
};

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await runCli(argv, { env: {}, stdout: out.stream, stderr: err.stream }, [echo]);
  return { code, out: out.text(), err: err.text() };
}

describe('ward CLI frame', () => {
  it('lists commands in --help', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('ward demo echo');
  });
  it('dispatches to the longest matching command', async () => {
    expect(await run(['demo', 'echo', 'a', 'b'])).toMatchObject({ code: 0, out: 'a b' });
  });
  it('rejects unknown commands with status 2', async () => {
    const r = await run(['demo', 'nope']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown command');
  });
  it('prints usage on usage errors and a plain message on other errors', async () => {
    const bad = await run(['demo', 'echo', '--bad']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown flag --bad');
    expect(bad.err).toContain('Usage: ward demo echo');
    const fail = await run(['demo', 'echo', '--fail']);
    expect(fail.code).toBe(1);
    expect(fail.err).toBe('ward demo echo: etcd unreachable\n');
  });
});
