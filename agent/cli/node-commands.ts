import type { Command } from './command.js';
import { AGENT_COMMANDS } from './agent-commands.js';
import { ENDPOINT_COMMANDS } from './endpoint-commands.js';
import { POLICY_COMMANDS } from './policy-commands.js';

/** The node agent's commands: `ward agent|status`, `ward endpoint ...`, `ward policy import|list|get|delete`. */
export const NODE_COMMANDS: readonly Command[] = [...AGENT_COMMANDS, ...ENDPOINT_COMMANDS, ...POLICY_COMMANDS];
