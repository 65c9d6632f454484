-- The room's figures, and the buyer's place if `buyer` is given. Changes nothing but the
-- draw, which is due at the start whoever notices first.
-- args: buyer (optional)
draw()
local reply = {room = figures()}
if args.buyer then reply.you = place_of(args.buyer) end
return cjson.encode(reply)
