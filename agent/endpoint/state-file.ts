import { mkdirSync, readFileSync, renameSync, writeFileSync, fsyncSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { ENDPOINT_NAME_RE, type EndpointRecord } from './types.js';
import { StateFileError } from './errors.js';

const VERSION = 1;

interface FileShape {
  readonly v: number;
  readonly endpoints: readonly EndpointRecord[];
}

function isRecord(x: unknown): x is EndpointRecord {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return (
    typeof o['name'] === 'string' &&
    ENDPOINT_NAME_RE.test(o['name']) &&
    Number.isInteger(o['id']) &&
    Array.isArray(o['labels']) &&
    o['labels'].every((l) => typeof l === 'string') &&
    typeof o['netns'] === 'string' &&
    typeof o['ifname'] === 'string' &&
    typeof o['ip'] === 'string' &&
    Number.isInteger(o['identity']) &&
    typeof o['createdAtMs'] === 'number'
  );
}

/**
 * The node's local endpoints, in `<stateDir>/endpoints.json`. Written atomically (temp file,
 * fsync, rename), so a crash leaves either the old or the new content, never a torn file.
 */
export class EndpointStateFile {
  readonly path: string;

  constructor(readonly dir: string) {
    this.path = join(dir, 'endpoints.json');
  }

  load(): EndpointRecord[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new StateFileError(`cannot read ${this.path}: ${String(err)}`, { cause: err });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new StateFileError(`${this.path} is not JSON: ${String(err)}`, { cause: err });
    }
    const f = raw as { v?: unknown; endpoints?: unknown };
    if (f.v !== VERSION || !Array.isArray(f.endpoints)) throw new StateFileError(`${this.path}: unknown format (want v=${VERSION})`);
    const list = f.endpoints as unknown[];
    const bad = list.find((e) => !isRecord(e));
    if (bad !== undefined) throw new StateFileError(`${this.path}: malformed endpoint ${JSON.stringify(bad)}`);
    return list as EndpointRecord[];
  }

  save(endpoints: Iterable<EndpointRecord>): void {
    const body: FileShape = { v: VERSION, endpoints: [...endpoints].sort((a, b) => a.id - b.id) };
    const tmp = `${this.path}.tmp`;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
      const fd = openSync(tmp, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch (err) {
      throw new StateFileError(`cannot write ${this.path}: ${String(err)}`, { cause: err });
    }
  }
}
