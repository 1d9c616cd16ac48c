'use strict';
// shm-typed-lru: an LRU cache in shared memory (a byte budget or fixed-size records). The entry point:
// the original package's API (lib/seed.js), call for call, with the SharedLRU class
// (lib/shared-lru.js) beside it.

module.exports = {
  ...require('./lib/seed'),
  SharedLRU: require('./lib/shared-lru'),
};
