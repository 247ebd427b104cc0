#!/usr/bin/env node
// The inference server process (the image's entry point).
import { main } from './main.js';

await main();
