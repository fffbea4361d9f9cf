-- Read a survey at once: its hash and its filed value (tracker.store.filed), so that no thaw or filing falls between
-- the two reads (a pipeline of them may see the survey in neither place while one moves it). Run by
-- tracker.store.filed.read_at_once: for one survey, and for those a read's pipeline found nowhere.
-- KEYS: 1 survey, 2 its filing hash; ARGV: 1 sid. Returns {the hash's fields and values, flat; the filed value or false}.
return {redis.call('HGETALL', KEYS[1]), redis.call('HGET', KEYS[2], ARGV[1])}
