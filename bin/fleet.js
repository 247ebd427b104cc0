#!/usr/bin/env node
// The single `fleet` executable: the parts' commands composed onto one program (no part imports
// another): the control plane's server and client commands, the agent's daemon. Runs the build.
import { agentCommand } from '../dist/agent/src/cli.js';
import { createProgram, runCli } from '../dist/common/cli.js';
import { addControlPlaneCommands } from '../dist/control-plane/src/cli/commands.js';

const program = createProgram();
addControlPlaneCommands(program);
program.addCommand(agentCommand());
await runCli(program, process.argv);
