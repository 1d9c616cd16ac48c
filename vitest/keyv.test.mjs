// keyv's own compliance suite, @keyv/test-suite, against KeyvSharedLRU: the api, value and
// namespace tests (keyvTestSuite). (Its iterator tests are left out: keyv offers iterator() only
// for adapters it knows by name; test/keyv.test.js covers the store's own iterator.) Every store() opens the same shared
// cache, as separate processes would: the store's default one, with a byte budget.
import * as test from 'vitest';
import keyvTestSuite from '@keyv/test-suite';
import Keyv from 'keyv';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { KeyvSharedLRU } = require('../lib/keyv.js');
const { SharedLRU } = require('../index.js');

const name = `/shmlru-keyv-suite-${process.pid}`;
SharedLRU.destroy(name);
const store = () => new KeyvSharedLRU({ name });

keyvTestSuite(test, Keyv, store);

test.afterAll(() => {
  SharedLRU.destroy(name);
});
