import { LabelSet } from '../../identity/index.js';
import { CNI_CODES, CniError } from './errors.js';

/** CNI spec versions whose ADD result ward writes (same shape from 0.3.0 on). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;
export const DEFAULT_API_SOCKET = '/run/ward/agent.sock';
export const PLUGIN_TYPE = 'ward-cni';

/** The network configuration on stdin, as ward reads it. */
export interface NetConf {
  readonly cniVersion: string;
  readonly name: string;
  readonly apiSocket: string;
  /** `key=value` (or `source:key=value`) labels every container of this network gets. */
  readonly labels: readonly string[];
  /** The previous plugin's result when chained; ward appends to it. */
  readonly prevResult?: Record<string, unknown>;
}

const NETWORK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const bad = (msg: string): CniError => new CniError(CNI_CODES.invalidConfig, `network config: ${msg}`);

/** The JSON object on stdin (code 6 when it is not JSON, 7 when it is not an object). */
export function decodeStdin(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CniError(CNI_CODES.decodeFailure, 'network config on stdin is not JSON', err instanceof Error ? err.message : String(err), { cause: err });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('must be a JSON object');
  return v as Record<string, unknown>;
}

export function checkVersion(v: unknown): string {
  if (typeof v !== 'string' || v === '') throw bad('cniVersion must be a version string like "1.0.0"');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(v)) {
    throw new CniError(CNI_CODES.incompatibleVersion, `cniVersion ${v} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return v;
}

/** `labels` as a list of `k=v` strings or an object `{k: v}`. */
function configLabels(v: unknown): string[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) {
    if (!v.every((x) => typeof x === 'string')) throw bad('labels must be a list of "key=value" strings or an object of strings');
    return v;
  }
  if (typeof v === 'object' && v !== null) {
    return Object.entries(v).map(([k, x]) => {
      if (typeof x !== 'string') throw bad(`labels.${k} must be a string`);
      return `${k}=${x}`;
    });
  }
  throw bad('labels must be a list of "key=value" strings or an object of strings');
}

/** Checks the network configuration of ADD, DEL or CHECK. Unknown keys are ignored (spec). */
export function parseNetConf(o: Record<string, unknown>): NetConf {
  const cniVersion = checkVersion(o['cniVersion']);
  const name = o['name'];
  if (typeof name !== 'string' || !NETWORK_NAME_RE.test(name)) throw bad('name must be letters, digits, "_", "." or "-"');
  if (o['type'] !== PLUGIN_TYPE) throw bad(`type is ${JSON.stringify(o['type'])}; this plugin is "${PLUGIN_TYPE}"`);
  const apiSocket = o['apiSocket'] ?? DEFAULT_API_SOCKET;
  if (typeof apiSocket !== 'string' || !apiSocket.startsWith('/')) throw bad('apiSocket must be an absolute path');
  const prev = o['prevResult'];
  if (prev !== undefined && (typeof prev !== 'object' || prev === null || Array.isArray(prev))) throw bad('prevResult must be an object');
  return { cniVersion, name, apiSocket, labels: configLabels(o['labels']), ...(prev !== undefined ? { prevResult: prev as Record<string, unknown> } : {}) };
}

export const LABEL_ARG_PREFIX = 'ward.label.';
export const LABELS_ARG = 'WARD_LABELS';

/**
 * `WARD_LABELS=app:web+env:prod`: CNI_ARGS values cannot hold '=' or ';', so a label is
 * `key:value` (split at the last ':', so `container:app:web` is `container:app=web`) and
 * labels are joined by '+'.
 */
export function decodeLabelsArg(text: string): string[] {
  return text
    .split('+')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.lastIndexOf(':');
      if (i <= 0) throw new CniError(CNI_CODES.invalidConfig, `CNI_ARGS ${LABELS_ARG}: ${JSON.stringify(p)} must be key:value (labels joined by "+")`);
      return `${p.slice(0, i)}=${p.slice(i + 1)}`;
    });
}

/**
 * The endpoint's labels: the network's `labels`, then `ward.label.KEY=VALUE` args, then
 * `WARD_LABELS`; a later one replaces an earlier one with the same key. At least one is needed.
 */
export function mergeLabels(conf: NetConf, args: ReadonlyMap<string, string>): string[] {
  const byKey = new Map<string, string>();
  const put = (l: string): void => {
    const eq = l.indexOf('=');
    byKey.set(eq < 0 ? l : l.slice(0, eq), l);
  };
  conf.labels.forEach(put);
  for (const [k, v] of args) if (k.startsWith(LABEL_ARG_PREFIX) && k.length > LABEL_ARG_PREFIX.length) put(`${k.slice(LABEL_ARG_PREFIX.length)}=${v}`);
  const enc = args.get(LABELS_ARG);
  if (enc !== undefined) decodeLabelsArg(enc).forEach(put);
  const labels = [...byKey.values()].sort();
  if (labels.length === 0) throw new CniError(CNI_CODES.invalidConfig, `no labels: set "labels" in the network config, or ${LABELS_ARG}=key:value+... or ${LABEL_ARG_PREFIX}KEY=VALUE in CNI_ARGS`);
  let set: LabelSet;
  try {
    set = LabelSet.parse(labels);
  } catch (err) {
    throw new CniError(CNI_CODES.invalidConfig, `labels: ${err instanceof Error ? err.message : String(err)}`, '', { cause: err });
  }
  // The agent refuses these too; saying it here gives the runtime a config error (7).
  if (set.labels.some((l) => l.source === 'reserved' || l.source === 'cidr')) throw new CniError(CNI_CODES.invalidConfig, 'labels: sources reserved: and cidr: belong to ward');
  return labels;
}
