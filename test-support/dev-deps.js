'use strict';
// Tests that need the package's dev dependencies (lru-cache, keyv, cache-manager, ioredis)
// skip with a visible reason in a clone where `npm install` has not run, and fail in CI, which
// installs them first (.ci/run).

function missing(names) {
  return names.filter((n) => {
    try {
      require.resolve(n);
      return false;
    } catch {
      return true;
    }
  });
}

/** A skip reason when any of `names` cannot be loaded, else false; throws under CI. */
function devSkip(...names) {
  const gone = missing(names);
  if (gone.length === 0) return false;
  const what = `${gone.join(', ')} not installed (run npm install to get the dev dependencies)`;
  if (process.env.CI === 'true') throw new Error(`CI must run these tests, but ${what}`);
  return what;
}

module.exports = { devSkip };
