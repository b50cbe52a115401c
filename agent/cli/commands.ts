import type { Command } from './command.js';
import { IDENTITY_COMMANDS } from './identity-commands.js';
import { policyTraceCommand } from './policy-trace.js';
import { devDemoCommand } from './dev-commands.js';
import { NODE_COMMANDS } from './node-commands.js';

/**
 * Every subcommand of `ward`. Each feature adds its commands from its own file here
 * (one import line each) so features do not edit each other's code.
 */
export const COMMANDS: readonly Command[] = [...IDENTITY_COMMANDS, policyTraceCommand, devDemoCommand, ...NODE_COMMANDS];
