-- Push a live hold's expiry out by the event's ttl, but never past created + max_hold_ms:
-- otherwise a buyer could keep seats off sale forever. No seat changes state, so no
-- event is emitted and seq stays.
-- args: token, holder, admitted
local refusal = admission_refusal()
if refusal then return refusal end
local hold, err = hold_for(args.token, args.holder)
if not hold then return err end
local ttl, max_hold = unpack(redis.call('HMGET', K_META, 'ttl_ms', 'max_hold_ms'))
local expires = math.min(now + tonumber(ttl), hold.created + tonumber(max_hold))
if expires > hold.expires then
  hold.expires = expires
  redis.call('HSET', K_HOLDS, args.token, cjson.encode(hold))
  redis.call('ZADD', K_EXPIRY, expires, args.token)
end
return reply({expires = hold.expires})
