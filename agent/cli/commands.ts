import type { Command } from './command.js';
import { IDENTITY_COMMANDS } from './identity-commands.js';
import { policyTraceCommand } from './policy-trace.js';
import { DEV_COMMANDS } from './dev-commands.js';
import { NODE_COMMANDS } from './node-commands.js';
import { OBSERVE_COMMANDS } from './observe-commands.js';
import { ETCD_COMMANDS } from './etcd-commands.js';

/**
 * Every subcommand of `ward`. Each feature adds its commands from its own file here
 * (one import line each) so features do not edit each other's code.
 */
export const COMMANDS: readonly Command[] = [...IDENTITY_COMMANDS, policyTraceCommand, ...DEV_COMMANDS, ...NODE_COMMANDS, ...OBSERVE_COMMANDS, ...ETCD_COMMANDS];
