-- Close a sale: no new holds; live holds may still be extended, released or reserved.
if not redis.call('HGET', K_META, 'status') then return fail('sale_not_open') end
redis.call('HSET', K_META, 'status', 'closed')
return reply({seq = tonumber(redis.call('HGET', K_META, 'seq'))})
