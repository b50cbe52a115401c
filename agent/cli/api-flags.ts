import { ApiClient } from '../api/index.js';

/** `--api-socket` flag, else WARD_API_SOCKET, else the agent's default. */
export function apiClientFrom(flag: string | undefined, env: NodeJS.ProcessEnv): ApiClient {
  return new ApiClient(flag ?? env['WARD_API_SOCKET'] ?? '/run/ward/agent.sock');
}

export const API_SOCKET_HELP = '  --api-socket PATH      agent API socket (default: $WARD_API_SOCKET or /run/ward/agent.sock)';
