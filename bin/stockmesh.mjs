#!/usr/bin/env node
// The `stockmesh` command. Runs the TypeScript sources through tsx, so a clone works without a build step.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/cli.ts')
await main(process.argv)
