#!/usr/bin/env node
// The single `fleet` executable: server, agent and client commands. Runs the compiled build.
import { main } from '../dist/control-plane/src/cli/main.js';

await main(process.argv);
