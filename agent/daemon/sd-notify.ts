import { execFile } from 'node:child_process';
import type { Logger } from './logger.js';

/**
 * Tells systemd (Type=notify) that the agent is ready. Node has no unix datagram sockets, so
 * this runs `systemd-notify --ready --pid=<agent>`: the message carries the agent's PID as
 * sender credentials (root may set them), so systemd never has to attribute it to the
 * short-lived helper; the unit sets NotifyAccess=all too. `--no-block` skips the reply barrier.
 * Without NOTIFY_SOCKET (not under systemd) it does nothing. Never throws: a failure is logged
 * (systemd then times the start out and restarts the agent).
 */
export function notifyReady(env: NodeJS.ProcessEnv, log: Logger, status = 'in sync'): Promise<boolean> {
  if (env['NOTIFY_SOCKET'] === undefined || env['NOTIFY_SOCKET'] === '') return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile('systemd-notify', ['--ready', '--no-block', `--pid=${process.pid}`, `--status=${status}`], { env, timeout: 10_000 }, (err) => {
      if (err !== null) {
        log.error({ err: err.message }, 'systemd-notify --ready failed (is the systemd package installed?)');
        resolve(false);
        return;
      }
      log.info('readiness sent to systemd');
      resolve(true);
    });
  });
}
