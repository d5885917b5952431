#!/usr/bin/env node
import { exitQuietlyOnClosedPipe, main } from "../dist/src/main.js";

exitQuietlyOnClosedPipe();
process.exitCode = await main(process.argv.slice(2));
