-- A buyer takes their place: one per buyer (their session, or their user). A buyer whose
-- place is spent (dropped, or their pass ran out) gets a new one at the back.
-- KEYS[8]: the address's counter of new places.
-- args: buyer, draw (a random number in [0, 1): the buyer's lot if they are early),
-- address_limit (0: none), address_window_ms
if room.on ~= '1' then return cjson.encode({room = figures()}) end
draw()
if not place_live(args.buyer) then
  if args.address_limit > 0 then
    local count = redis.call('INCR', KEYS[8])
    local ttl = redis.call('PTTL', KEYS[8])
    if ttl < 0 then
      ttl = args.address_window_ms
      redis.call('PEXPIRE', KEYS[8], ttl)
    end
    if count > args.address_limit then
      return fail('too_many_places', {wait_ms = ttl})
    end
  end
  if room.drawn == '1' then
    local ticket = redis.call('HINCRBY', K_ROOM, 'tickets', 1)
    room.tickets = tostring(ticket)
    redis.call('HSET', K_PLACES, args.buyer, ticket)
  else
    redis.call('ZADD', K_EARLY, args.draw, args.buyer)
    redis.call('HSET', K_PLACES, args.buyer, 'e')
  end
end
return cjson.encode({room = figures(), you = place_of(args.buyer)})
