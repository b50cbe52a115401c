import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/index.js';

export type { Logger };

/**
 * The agent's root logger: JSON lines on stdout (journald), one child per subsystem. The etcd
 * layer adds `node` and its own `subsys` only where the logger it is given lacks them
 * (kvstore's childLogger), so every key appears once in a line.
 */
export function createAgentLogger(level: LogLevel): Logger {
  return pino({ level, timestamp: pino.stdTimeFunctions.isoTime });
}
