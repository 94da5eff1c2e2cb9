-- The Lua side of a Keel scripting VM, run once when the VM is created.
--
-- Arguments (from server/scripting/vm.py): the Python callbacks and the
-- constants this VM needs. Returns the table of entry points Python uses
-- (compile, run, run_function, ...). Once sealed (api.seal), a script's
-- globals can be neither created nor read undeclared, in Redis's words, and
-- the library tables are read-only.

local py_errtext, py_hook, version, version_num, hook_every, chunkname, py_caught = ...

local dbg = debug
local error, type, tostring, rawget, rawset, select, pairs =
      error, type, tostring, rawget, rawset, select, pairs
local setmetatable, getmetatable, xpcall, raw_pcall, raw_loadstring =
      setmetatable, getmetatable, xpcall, pcall, loadstring
local byte = string.byte

local ARGS_ERR = 'ERR wrong number or type of arguments'

-- --- the redis table --------------------------------------------------------

local redis = {}
redis.REDIS_VERSION = version
redis.REDIS_VERSION_NUM = version_num
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3

-- A text with an error code ("-CODE message" or "CODE message") keeps it;
-- one word alone becomes "ERR word".
local function error_text(s)
  if byte(s, 1) == 45 then s = s:sub(2) end  -- '-'
  if not s:find(' ', 1, true) then return 'ERR ' .. s end
  return s
end

function redis.error_reply(s)
  if type(s) ~= 'string' then return {err = ARGS_ERR} end
  return {err = error_text(s)}
end

function redis.status_reply(s)
  if type(s) ~= 'string' then return {err = ARGS_ERR} end
  return {ok = s}
end

function redis.replicate_commands() return true end

-- Builders Python uses to make reply tables.
local api = {}
function api.ok(s) return {ok = s} end
function api.err(s) return {err = s} end
function api.double(d) return {double = d} end
function api.big_number(s) return {big_number = s} end
function api.map(t) return {map = t} end
function api.set(t) return {set = t} end
function api.verbatim(f, s) return {verbatim_string = {format = f, string = s}} end
-- n status tables at once, as multiple values (redis.call's pool of {ok='OK'}).
local unpack = unpack
function api.ok_batch(s, n)
  local t = {}
  for i = 1, n do t[i] = {ok = s} end
  return unpack(t, 1, n)
end

-- --- errors, pcall ------------------------------------------------------------

-- An error table ({err = text}) and an error raised by the redis.* functions
-- (Python callables: a Python exception reaches Lua as userdata, py_errtext
-- gives its text) are answered as they are; anything else is a Lua error,
-- answered as "ERR <message>". Either way the reply names the line of the
-- user's code that raised it. (The redis.* functions that may raise are
-- Python callables, not Lua functions: a Lua function called as
-- `return f()` is a tail call and takes its caller's line with it.)
local function on_error(e)
  local line = 0
  for level = 2, 200 do
    local info = dbg.getinfo(level, 'Sl')
    if info == nil then break end
    if info.source == chunkname then line = info.currentline break end
  end
  local msg
  if type(e) == 'userdata' then e = {err = py_errtext(e)} end
  if type(e) == 'table' then
    msg = rawget(e, 'err')
    if type(msg) ~= 'string' then msg = 'ERR unknown error' end
  else
    msg = 'ERR ' .. tostring(e)
  end
  return {msg, line}
end

-- A caught error table reaches the script as its text, as in Redis.
local function caught(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if type(e) == 'userdata' then return false, py_caught(e) end
  if type(e) == 'table' and type(rawget(e, 'err')) == 'string' then return false, rawget(e, 'err') end
  return false, e
end

-- --- the sandbox ------------------------------------------------------------
-- Scripts run with their own globals, `env`, sealed by api.seal(): from then
-- on they see it through a read-only view (`scope`, also their _G), so that
-- no global can be written, an existing one (redis, cjson, KEYS) included,
-- and reading an undeclared one errors, in Redis's words. Library tables are
-- read-only views too. Lua 5.1 has no read-only tables (Redis patches its
-- Lua for them), so rawset, rawget, setmetatable, next and pairs see through
-- a view to its table, and refuse to change it, as Redis's do.
-- The state's real globals stay as Lua left them (lupa itself reads them).

local env = {}
for _, name in pairs({'assert', 'collectgarbage', 'coroutine', 'error', 'gcinfo', 'getmetatable',
                      'ipairs', 'math', 'next', 'pairs', 'rawequal', 'rawget', 'rawset', 'select',
                      'setmetatable', 'string', 'table', 'tonumber', 'tostring', 'type', 'unpack',
                      'xpcall', '_VERSION', 'load'}) do
  env[name] = _G[name]
end
env._G = env
env.redis = redis
env.pcall = function(f, ...) return caught(raw_pcall(f, ...)) end
local setfenv = setfenv
local scope = env  -- what scripts' code sees as its globals (a view once sealed)

local viewed = setmetatable({}, {__mode = 'k'})  -- read-only view -> its table
local READONLY = 'Attempt to modify a readonly table'
local getinfo = dbg.getinfo

-- An argument error of the Lua function a wrapper below called (through
-- pcall, so named '?'), raised as the wrapper's own: with the name the
-- script called it by, at the script's line, as the function itself says it.
local function raise_as(msg)
  local info = getinfo(2, 'n')
  local name = info and info.name or '?'
  error((msg:gsub("to '%?'", "to '" .. name .. "'", 1)), 3)
end

-- f(...) with a view as its first argument replaced by the viewed table.
local function seen_through(f, ...)
  local v = viewed[(...)]
  if v ~= nil then return raw_pcall(f, v, select(2, ...)) end
  return raw_pcall(f, ...)
end

do
  local rawget, rawset, setmetatable, next, pairs = rawget, rawset, setmetatable, next, pairs
  env.rawget = function(...)
    local ok, r = seen_through(rawget, ...)
    if not ok then raise_as(r) end
    return r
  end
  env.next = function(...)
    local ok, k, v = seen_through(next, ...)
    if not ok then raise_as(k) end
    return k, v
  end
  env.pairs = function(...)
    local ok, f, t, k = seen_through(pairs, ...)
    if not ok then raise_as(f) end
    return f, t, k
  end
  env.rawset = function(...)
    if viewed[(...)] then error(READONLY, 0) end
    local ok, r = raw_pcall(rawset, ...)
    if not ok then raise_as(r) end
    return r
  end
  env.setmetatable = function(...)
    if viewed[(...)] then error(READONLY, 0) end
    local ok, r = raw_pcall(setmetatable, ...)
    if not ok then raise_as(r) end
    return r
  end
end

-- The library functions written in Python are userdata to Lua: type() calls
-- them functions, as Redis's C functions are (api.seal lists them; Python
-- tells which userdata are callable: cjson.null is not).
local py_functions = setmetatable({}, {__mode = 'k'})
do
  local type = type
  env.type = function(...)
    if select('#', ...) == 0 then raise_as("bad argument #1 to '?' (value expected)") end
    local v = ...
    local t = type(v)
    if t == 'userdata' and py_functions[v] then return 'function' end
    return t
  end
end

-- Precompiled chunks bypass the compiler's checks: refused.
env.loadstring = function(s, name)
  if type(s) == 'string' and byte(s, 1) == 27 then return nil, 'bytecode not allowed' end
  local f, e = raw_loadstring(s, name)
  if f then setfenv(f, scope) end
  return f, e
end

function api.compile(body, name)
  local f, e = raw_loadstring(body, name or chunkname)
  if f then setfenv(f, scope) end
  return f, e
end

-- KEYS and ARGV from a call's arguments: the usual shapes (no keys, or no
-- arguments besides the keys) take one table constructor.
local function split_args(nkeys, ...)
  if nkeys == 0 then return {}, {...} end
  local n = select('#', ...)
  if nkeys == n then return {...}, {} end
  local keys, argv, all = {}, {}, {...}
  for i = 1, nkeys do keys[i] = all[i] end
  for i = nkeys + 1, n do argv[i - nkeys] = all[i] end
  return keys, argv
end

-- What a run answers Python: (true, 1, text) for an error reply table,
-- (true, 2, text) for a status table, (true, 0, value) for anything else,
-- (false, {message, line}) for an error. Telling the two common tables apart
-- here costs less than asking for their fields from Python.
local function classify(ok, r)
  if not ok then return false, r end
  if type(r) == 'table' then
    local e = rawget(r, 'err')
    if type(e) == 'string' then return true, 1, e end
    local s = rawget(r, 'ok')
    if type(s) == 'string' then return true, 2, s end
  end
  return true, 0, r
end

-- EVAL: KEYS and ARGV are globals (set in env itself, which refuses no
-- write: scripts see it through its read-only view).
function api.run(f, nkeys, ...)
  env.KEYS, env.ARGV = split_args(nkeys, ...)
  return classify(xpcall(f, on_error))
end

-- FCALL: the function takes (keys, args), handed over through upvalues
-- rather than a new closure per call (one function runs at a time).
local fn_f, fn_keys, fn_argv
local function call_function() return fn_f(fn_keys, fn_argv) end
function api.run_function(f, nkeys, ...)
  fn_f = f
  fn_keys, fn_argv = split_args(nkeys, ...)
  return classify(xpcall(call_function, on_error))
end

-- Tables for cmsgpack.unpack, filled one key at a time as Redis's library
-- fills them (so that pairs() and a new pack see the same order): an array
-- of n values (nil among them), a map of n key/value pairs.
function api.array_from(values, n)
  local t = {}
  for i = 1, n do t[i] = values[i] end
  return t
end

function api.hash_from(kv, n)
  local t = {}
  for i = 1, 2 * n, 2 do t[kv[i]] = kv[i + 1] end
  return t
end

-- A FUNCTION LOAD library's body.
function api.run_plain(f)
  return xpcall(f, on_error)
end

api.env = env
local collect = collectgarbage
function api.gc() collect('collect') end
api.redis = redis
api.getinfo = dbg.getinfo

local function readonly(t)
  local view = setmetatable({}, {
    __index = t,
    __newindex = function() error(READONLY, 2) end,
    __metatable = false,
  })
  viewed[view] = t
  return view
end
api.readonly = readonly

function api.seal(is_function)
  for _, name in pairs({'string', 'math', 'table', 'coroutine', 'redis', 'cjson', 'cmsgpack', 'bit', 'struct'}) do
    local t = rawget(env, name)
    if t ~= nil then
      for _, v in pairs(t) do
        if type(v) == 'userdata' and is_function(v) then py_functions[v] = true end
      end
      rawset(env, name, readonly(t))
    end
  end
  setmetatable(env, {
    __index = function(_, k)
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end,
    __metatable = false,
  })
  scope = readonly(env)
  rawset(env, '_G', scope)
end

-- The kill switch and the busy check: every hook_every instructions.
dbg.sethook(function()
  local m = py_hook()
  if m ~= nil then error({err = m}, 0) end
end, '', hook_every)

return api
