#!/usr/bin/env node
// The single `fleet` executable: the parts' commands composed onto one program (no part imports
// another): the control plane's server and client commands, the agent's daemon. Runs the build.
// A command line that names a command loads only the part that owns it (`fleet apply` starts
// without the agent's definitions); help, version and unknown commands load every part.
import { commandWord, createProgram, runCli } from '../dist/common/cli.js';

const word = commandWord(process.argv.slice(2));
const program = createProgram();
if (word !== 'agent') {
  const { addControlPlaneCommands } = await import('../dist/control-plane/src/cli/commands.js');
  await addControlPlaneCommands(program, word);
}
if (!program.commands.some((c) => c.name() === word || c.aliases().includes(word))) {
  const { agentCommand } = await import('../dist/agent/src/cli.js');
  program.addCommand(agentCommand());
}
await runCli(program, process.argv);
