import { pino, type Logger } from 'pino';

export type { Logger };

let fallback: Logger | undefined;

/** The logger used when none is injected: JSON to stdout at WARD_LOG_LEVEL (default info). */
export function defaultLogger(): Logger {
  fallback ??= pino({ level: process.env['WARD_LOG_LEVEL'] ?? 'info' });
  return fallback;
}

/** A logger that drops everything (tests, CLI). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * A child of `parent` with `fields`, each key written once: pino repeats a key bound twice in
 * the JSON line. A field the parent already has with the same value is dropped; our `subsys`
 * under a parent that has its own becomes `component`; any other clash is dropped (the
 * parent's value wins, as it is the caller's context).
 */
export function childLogger(parent: Logger, fields: Readonly<Record<string, string>>): Logger {
  const bound = parent.bindings();
  const add: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (!(k in bound)) add[k] = v;
    else if (k === 'subsys' && bound[k] !== v && !('component' in bound)) add['component'] = v;
  }
  return Object.keys(add).length === 0 ? parent : parent.child(add);
}
