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
