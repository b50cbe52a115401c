import { CNI_CODES, CniError } from './errors.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

/** The runtime's CNI_* variables, checked for the command that needs them. */
export interface CniEnv {
  readonly command: CniCommand;
  readonly containerId: string;
  /** Absent only on DEL (the netns may already be gone). */
  readonly netns?: string;
  readonly ifname: string;
  /** CNI_ARGS as key -> value (later duplicates win). */
  readonly args: ReadonlyMap<string, string>;
  readonly path: readonly string[];
}

const COMMANDS = new Set<string>(['ADD', 'DEL', 'CHECK', 'VERSION']);
// Spec: the container ID is alphanumerics plus '_', '.', '-', not empty.
const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// Linux interface names: at most 15 bytes, no '/', ':' or whitespace (the agent checks the same).
const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

const invalid = (name: string, why: string): CniError => new CniError(CNI_CODES.invalidEnv, `${name} ${why}`);

/** `K1=V1;K2=V2` (the spec's CNI_ARGS); a pair without '=' is an error. */
export function parseCniArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalid('CNI_ARGS', `has ${JSON.stringify(part)}; expected KEY=VALUE pairs separated by ';'`);
    out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

/** Reads and checks the CNI_* variables; every problem names the variable (code 4). */
export function parseCniEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env['CNI_COMMAND'] ?? '';
  if (!COMMANDS.has(command)) throw invalid('CNI_COMMAND', `is ${JSON.stringify(command)}; expected ADD, DEL, CHECK or VERSION`);
  const path = (env['CNI_PATH'] ?? '').split(':').filter((p) => p !== '');
  if (command === 'VERSION') return { command: 'VERSION', containerId: '', ifname: '', args: new Map(), path };
  const containerId = env['CNI_CONTAINERID'] ?? '';
  if (!CONTAINER_ID_RE.test(containerId)) throw invalid('CNI_CONTAINERID', `is ${JSON.stringify(containerId)}; expected letters, digits, '_', '.' or '-'`);
  const ifname = env['CNI_IFNAME'] ?? '';
  if (!IFNAME_RE.test(ifname)) throw invalid('CNI_IFNAME', `is ${JSON.stringify(ifname)}; expected a Linux interface name (1-15 characters)`);
  const netns = env['CNI_NETNS'] ?? '';
  if (netns === '' && command !== 'DEL') throw invalid('CNI_NETNS', 'is required for ' + command);
  if (netns !== '' && !netns.startsWith('/')) throw invalid('CNI_NETNS', `is ${JSON.stringify(netns)}; expected an absolute path`);
  return { command: command as CniCommand, containerId, ifname, args: parseCniArgs(env['CNI_ARGS'] ?? ''), path, ...(netns !== '' ? { netns } : {}) };
}
