// vitest runs only keyv's compliance suite (vitest/), which is written for vitest; every other
// test runs under node's own runner (test/).
export default {
  test: {
    include: ['vitest/**/*.test.mjs'],
    fileParallelism: false,
  },
};
