-- Turn a settled survey's hash back into fields (settle_survey.lua packed them), before a write that sets fields
-- only where the hash holds none (create_survey's HSETNX) or writes the survey whole.
-- KEYS: 1 survey, 2 its filing hash (tracker.store.filed). Returns 1.
--#thaw
thaw(KEYS[1], KEYS[2])
return 1
