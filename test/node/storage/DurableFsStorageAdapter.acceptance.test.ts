/**
 * automerge-repo's own acceptance suite for storage adapters, run against DurableFsStorageAdapter
 * (our own, stricter contract suite is in DurableFsStorageAdapter.test.ts). Upstream's suite is the
 * behaviour Repo and the other adapters are written against, so passing it is what "drop-in" means.
 * The package exports `./helpers/*.js`, so the suite is imported by its public path.
 */
import { describe } from 'vitest'
import { runStorageAdapterTests } from '@automerge/automerge-repo/helpers/tests/storage-adapter-tests.js'
import { DurableFsStorageAdapter } from '../../../src/node/storage/DurableFsStorageAdapter.ts'
import { tempDir } from '../../helpers/tempDir.ts'

describe('DurableFsStorageAdapter', () => {
  // A fresh folder per test (tempDir removes it when the test ends), so no test sees another's keys.
  runStorageAdapterTests(async () => ({ adapter: new DurableFsStorageAdapter(tempDir('stockmesh-acceptance-')) }), 'DurableFsStorageAdapter')
})
