import { KeyError } from './errors.js';

/** A label as the schema stores it; structurally identical to identity's `Label`. */
export interface SchemaLabel {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

// encodeURIComponent escapes every delimiter we use (`/ : = ; %` and `,`), so encoded parts
// never contain them and the key stays unambiguous whatever the label text holds.
function enc(part: string, whole: string): string {
  try {
    return encodeURIComponent(part);
  } catch (cause) {
    throw new KeyError(whole, `label text ${JSON.stringify(part)} is not valid Unicode`, { cause });
  }
}

function dec(part: string, whole: string): string {
  try {
    return decodeURIComponent(part);
  } catch (cause) {
    throw new KeyError(whole, `bad percent-encoding in ${JSON.stringify(part)}`, { cause });
  }
}

/**
 * Encodes a label list (already in canonical order) as one key segment:
 * `source:key=value;source:key=value`, each part percent-encoded. Never contains `/`.
 */
export function encodeLabelSegment(labels: readonly SchemaLabel[]): string {
  if (labels.length === 0) throw new KeyError('', 'an empty label set has no key');
  const whole = labels.map((l) => `${l.source}:${l.key}=${l.value}`).join(';');
  return labels.map((l) => `${enc(l.source, whole)}:${enc(l.key, whole)}=${enc(l.value, whole)}`).join(';');
}

/** Inverse of encodeLabelSegment. Rejects non-canonical spellings (e.g. `%61` for `a`). */
export function decodeLabelSegment(segment: string): SchemaLabel[] {
  if (segment === '') throw new KeyError(segment, 'empty label segment');
  const labels = segment.split(';').map((part) => {
    const colon = part.indexOf(':');
    const eq = part.indexOf('=');
    if (colon < 0 || eq < colon) throw new KeyError(segment, `label ${JSON.stringify(part)} is not source:key=value`);
    return { source: dec(part.slice(0, colon), segment), key: dec(part.slice(colon + 1, eq), segment), value: dec(part.slice(eq + 1), segment) };
  });
  if (encodeLabelSegment(labels) !== segment) throw new KeyError(segment, 'label segment is not in canonical encoding');
  return labels;
}
