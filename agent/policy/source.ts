import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Node as YamlNode } from 'yaml';

/** One document of a policy file as plain data, with the line of every field path. */
export interface SourceDocument {
  readonly index: number;
  readonly value: unknown;
  /** Field path (`specs[0].ingress[1]`) -> 1-based line. */
  readonly lines: ReadonlyMap<string, number>;
}

export interface SourceError {
  readonly document: number;
  readonly line?: number;
  readonly message: string;
}

/** Joins a field path: `a` + `b` = `a.b`; `a` + 2 = `a[2]`. */
export function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

function collectLines(node: unknown, path: string, lc: LineCounter, out: Map<string, number>): void {
  const n = node as YamlNode | null | undefined;
  if (n === null || n === undefined) return;
  if (n.range !== undefined && n.range !== null && !out.has(path)) out.set(path, lc.linePos(n.range[0]).line);
  if (isMap(n)) {
    for (const pair of n.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const p = childPath(path, k);
      const kn = pair.key as YamlNode | null;
      if (kn?.range) out.set(p, lc.linePos(kn.range[0]).line);
      collectLines(pair.value, p, lc, out);
    }
  } else if (isSeq(n)) {
    n.items.forEach((item, i) => collectLines(item, childPath(path, i), lc, out));
  }
}

/**
 * Parses YAML (multi-document) or JSON text (JSON is read as YAML 1.2, so JSON errors carry
 * lines too). Empty documents are skipped. Pure: takes the text, never the file.
 */
export function readDocuments(text: string): { documents: SourceDocument[]; errors: SourceError[] } {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  const documents: SourceDocument[] = [];
  const errors: SourceError[] = [];
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, index) => {
    for (const e of doc.errors) {
      errors.push({ document: index, line: lc.linePos(e.pos[0]).line, message: `syntax error: ${e.message.split('\n')[0] ?? e.code}` });
    }
    if (doc.errors.length > 0) return;
    if (doc.contents === null) return;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (cause) {
      errors.push({ document: index, message: `cannot read document: ${cause instanceof Error ? cause.message : String(cause)}` });
      return;
    }
    if (value === null || value === undefined) return;
    const lines = new Map<string, number>();
    collectLines(doc.contents, '', lc, lines);
    documents.push({ index, value, lines });
  });
  return { documents, errors };
}
