import { runCni } from './plugin.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The `ward-cni` executable: everything goes to stdout as the CNI spec wants it. */
export async function main(): Promise<void> {
  let stdin = '';
  try {
    stdin = await readStdin();
  } catch (err) {
    process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', code: 5, msg: `reading stdin: ${err instanceof Error ? err.message : String(err)}` }) + '\n');
    process.exitCode = 1;
    return;
  }
  const out = await runCni(process.env, stdin);
  if (out.stdout !== '') process.stdout.write(out.stdout + '\n');
  process.exitCode = out.code;
}
