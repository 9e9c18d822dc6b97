-- Many jobs' stored values at once, each in codec.FIELDS order, for listings:
-- one call in place of a pipeline of HMGETs, whose packing and parsing cost
-- the client more than the reads cost the server (a dashboard's page of 50).
-- ARGV: prefix, then the job ids. A job gone meanwhile answers a row of nils,
-- which the caller drops.
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = fetch(ARGV[i])
end
return out
