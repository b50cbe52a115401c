import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/index.js';

export type { Logger };

/**
 * The agent's root logger: JSON lines on stdout (journald), one child per subsystem. No `node`
 * in the base fields: the etcd layer adds it to its own children, and pino would repeat the key.
 */
export function createAgentLogger(level: LogLevel): Logger {
  return pino({ level, timestamp: pino.stdTimeFunctions.isoTime });
}
