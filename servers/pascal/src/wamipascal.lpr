{ wami-pascal: the design note's batched server in Free Pascal (RTL + FCL only), speaking wire
  protocol v1 (protocol/README.md). See servers/pascal/README.md.

  wami-pascal --db FILE [--host H] [--port P] [--flush-interval-ms N] [--max-queue N]
              [--max-payload-bytes N] [--max-buffered-bytes N] [--batch-retries N]
              [--writer-busy-timeout-ms N] [--seq-lease-block N]

  Prints "wami-pascal: listening on ws://HOST:PORT/ws (http://HOST:PORT) pid N" once it accepts
  connections. SIGTERM or SIGINT: graceful stop, exit 0. A bad flag or database: one line, exit 2. }
program wamipascal;

{$mode objfpc}{$H+}

uses
  cthreads, SysUtils, Math, wamiconn, wamiserver;

const
  USAGE =
    'Usage: wami-pascal --db FILE [--host H] [--port P] [flags]' + LineEnding +
    'Serves a seeded database (see "wami-bench seed") over wire protocol v1 with the design note''s batched design' + LineEnding +
    '(epoll event loop + a writer thread committing every flush interval), and prints' + LineEnding +
    '"wami-pascal: listening on ws://HOST:PORT/ws (http://HOST:PORT) pid N" once it accepts connections.' + LineEnding +
    'SIGTERM or SIGINT stops it gracefully (exit 0).' + LineEnding + LineEnding +
    '  --db FILE                   seeded SQLite database (required, must exist)' + LineEnding +
    '  --host H                    IPv4 address to listen on (default 127.0.0.1)' + LineEnding +
    '  --port P                    port, 0 = any free port (default 8080)' + LineEnding +
    '  --flush-interval-ms N       writer period in ms (default 100)' + LineEnding +
    '  --max-queue N               queued (and lease-held) updates before OVERLOADED (default 50000)' + LineEnding +
    '  --max-payload-bytes N       transport ceiling: larger messages are closed with 1009 (default 65536, >= 4096)' + LineEnding +
    '  --max-buffered-bytes N      unsent bytes per socket before it is closed with 4008 (default 1048576)' + LineEnding +
    '  --batch-retries N           extra tries of a failing batch before it is split (default 1)' + LineEnding +
    '  --writer-busy-timeout-ms N  busy_timeout of the writer connection (default 5000)' + LineEnding +
    '  --seq-lease-block N         seqs leased per board ahead of the broadcasts (default 1000, >= 2)' + LineEnding;

type
  EUsage = class(Exception);

function IntFlag(const name, raw: string; lo, hi: Int64): Int64;
var
  s: string;
  i: Integer;
begin
  s := Trim(raw);
  if s = '' then raise EUsage.CreateFmt('--%s must be an integer, got "%s"', [name, raw]);
  for i := 1 to Length(s) do
    if not ((s[i] in ['0'..'9']) or ((i = 1) and (s[i] = '-'))) then
      raise EUsage.CreateFmt('--%s must be an integer, got "%s"', [name, raw]);
  if not TryStrToInt64(s, Result) or (Result < lo) or (Result > hi) then
    raise EUsage.CreateFmt('--%s must be between %d and %d, got %s', [name, lo, hi, raw]);
end;

function IsIPv4(const s: string): Boolean;
var
  parts: TStringArray;
  p: string;
  v, i: Integer;
begin
  parts := s.Split(['.']);
  if Length(parts) <> 4 then Exit(False);
  for p in parts do
  begin
    if (Length(p) < 1) or (Length(p) > 3) then Exit(False);
    for i := 1 to Length(p) do if not (p[i] in ['0'..'9']) then Exit(False);
    v := StrToInt(p);
    if v > 255 then Exit(False);
  end;
  Result := True;
end;

var
  o: TServerOptions;
  i, eq: Integer;
  arg, name, value: string;
  hasDb: Boolean;
  code: Integer;
begin
  { IEEE semantics, as JavaScript and C: 1e400 is Infinity (then not a valid time), never a trap;
    libc's strtod and SQLite run with these masks too }
  SetExceptionMask([exInvalidOp, exDenormalized, exZeroDivide, exOverflow, exUnderflow, exPrecision]);
  o.host := '127.0.0.1';
  o.port := 8080;
  o.dbFile := '';
  o.flushIntervalMs := 100;
  o.maxQueue := 50000;
  o.maxPayloadBytes := 65536;
  o.maxBufferedBytes := 1024 * 1024;
  o.batchRetries := 1;
  o.writerBusyTimeoutMs := 5000;
  o.leaseBlock := 1000;
  hasDb := False;
  try
    i := 1;
    while i <= ParamCount do
    begin
      arg := ParamStr(i);
      Inc(i);
      if (arg = '--help') or (arg = '-h') then
      begin
        Write(USAGE);
        Halt(0);
      end;
      if Copy(arg, 1, 2) <> '--' then raise EUsage.CreateFmt('unexpected argument "%s"', [arg]);
      eq := Pos('=', arg);
      if eq > 0 then
      begin
        name := Copy(arg, 3, eq - 3);
        value := Copy(arg, eq + 1, MaxInt);
      end
      else
      begin
        name := Copy(arg, 3, MaxInt);
        if i > ParamCount then raise EUsage.CreateFmt('--%s needs a value', [name]);
        value := ParamStr(i);
        Inc(i);
      end;
      if name = 'db' then
      begin
        if value = '' then raise EUsage.Create('--db needs a file');
        o.dbFile := ExpandFileName(value);
        hasDb := True;
      end
      else if name = 'host' then
      begin
        if value = 'localhost' then value := '127.0.0.1';
        if not IsIPv4(value) then raise EUsage.CreateFmt('--host must be an IPv4 address such as 127.0.0.1, got "%s"', [value]);
        o.host := value;
      end
      else if name = 'port' then o.port := IntFlag(name, value, 0, 65535)
      else if name = 'flush-interval-ms' then o.flushIntervalMs := IntFlag(name, value, 1, 3600000)
      else if name = 'max-queue' then o.maxQueue := IntFlag(name, value, 1, 100000000)
      else if name = 'max-payload-bytes' then o.maxPayloadBytes := IntFlag(name, value, 4096, 256 * 1024 * 1024)
      else if name = 'max-buffered-bytes' then o.maxBufferedBytes := IntFlag(name, value, 1024, Int64(1) shl 40)
      else if name = 'batch-retries' then o.batchRetries := IntFlag(name, value, 0, 100)
      else if name = 'writer-busy-timeout-ms' then o.writerBusyTimeoutMs := IntFlag(name, value, 0, 3600000)
      else if name = 'seq-lease-block' then o.leaseBlock := IntFlag(name, value, 2, 1000000000)
      else raise EUsage.CreateFmt('unknown flag --%s (see --help)', [name]);
    end;
    if not hasDb then raise EUsage.Create('--db is required (a database made by "wami-bench seed")');
  except
    on e: EUsage do
    begin
      WriteLn(StdErr, 'wami-pascal: ', e.Message);
      Halt(2);
    end;
  end;
  code := RunServer(o);
  Halt(code);
end.
