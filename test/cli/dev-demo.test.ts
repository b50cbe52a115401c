import { describe, expect, it } from 'vitest';
import { runCli } from '../../agent/cli/main.js';
import { captureStream as capture } from '../helpers/cli.js';

describe('ward dev demo (the README run command)', () => {
  it('allocates one identity per label set across nodes, lists them, prints the matrix, cleans up', async () => {
    const out = capture();
    const err = capture();
    const code = await runCli(['dev', 'demo'], { env: {}, stdout: out.stream, stderr: err.stream });
    const text = out.text();
    expect(err.text()).toBe('');
    expect(code).toBe(0);
    const ids = new Map<string, string>();
    for (const m of text.matchAll(/^(web|web-2|api|db|debug)\s+node-\d\s+\S+\s+(\d+)$/gm)) ids.set(m[1]!, m[2]!);
    expect(ids.size).toBe(5);
    expect(ids.get('web')).toBe(ids.get('web-2'));
    expect(new Set(ids.values()).size).toBe(4);
    expect(text).toMatch(/app=web,env=prod\s+node-1,node-2/);
    // deny beats allow: debug (env=dev) is allowed to db:5432 by one rule and denied by another.
    expect(text).toMatch(/^debug\s+deny\s+deny\s+deny\s+deny\s+deny\s+deny\s+-\s+-$/m);
    expect(text).toMatch(/^api\s+deny\s+deny\s+-\s+-\s+deny\s+allow/m);
    expect(text).toContain('stopped etcd and removed its data');
  });
  it('rejects bad ports with a usage error', async () => {
    const out = capture();
    const err = capture();
    const code = await runCli(['dev', 'demo', '--ports', '80,x'], { env: {}, stdout: out.stream, stderr: err.stream });
    expect(code).toBe(2);
    expect(err.text()).toContain('--ports');
  });
});
