{ The metrics of protocol v1 section 7, kept by the event loop thread only (the writer reports
  through its results), written in the Prometheus text format the TypeScript servers write
  (prom-client's layout, the same histogram buckets), plus what only this server has: the seq
  lease holds and process figures read from /proc. }
unit wamimetrics;

{$mode objfpc}{$H+}

interface

const
  ERROR_CODE_COUNT = 5;
  ERROR_CODES: array[0..ERROR_CODE_COUNT - 1] of RawByteString =
    ('BAD_MESSAGE', 'UNKNOWN_CARD', 'OVERLOADED', 'BUSY_EXHAUSTED', 'WRITE_FAILED');
  EC_BAD_MESSAGE = 0;
  EC_UNKNOWN_CARD = 1;
  EC_OVERLOADED = 2;
  EC_BUSY_EXHAUSTED = 3;
  EC_WRITE_FAILED = 4;

type
  THistogram = record
    bounds: array of Double;
    counts: array of Int64; { per bucket, not cumulative; last = above every bound }
    sum: Double;
    count: Int64;
  end;

  TGauges = record
    connections: Int64;
    queueDepth: Int64;
    held: Int64;
    walBytes: Int64;
  end;

  TMetrics = record
    updatesReceived: Int64;
    updatesPersisted: Int64;
    broadcastFrames: Int64;
    errors: array[0..ERROR_CODE_COUNT - 1] of Int64;
    errorsSeen: array[0..ERROR_CODE_COUNT - 1] of Boolean;
    slowConsumerCloses: Int64;
    sqliteBusy: Int64;
    txRetries: Int64;
    busyExhausted: Int64;
    broadcastUnpersisted: Int64;
    batchSplits: Int64;
    leaseHolds: Int64;
    leaseCommits: Int64;
    batchSize: THistogram;
    commitDuration: THistogram;
    queueWait: THistogram;
    txAttempts: THistogram;
  end;

var
  M: TMetrics;

procedure InitMetrics;
procedure HistObserve(var h: THistogram; v: Double);
procedure CountError(code: Integer);
function RenderMetrics(const g: TGauges): RawByteString;
{ Resident set size of this process in bytes, from /proc/self/statm (the last good value if
  /proc cannot be read, e.g. no descriptor left near the file limit). }
function ResidentBytes: Int64;

implementation

uses
  SysUtils, BaseUnix, wamiutil;

var
  lastRss: Int64 = 0;
  lastCpu: Double = 0;

procedure HistInit(var h: THistogram; const bounds: array of Double);
var
  i: Integer;
begin
  SetLength(h.bounds, Length(bounds));
  for i := 0 to High(bounds) do h.bounds[i] := bounds[i];
  SetLength(h.counts, Length(bounds) + 1);
  for i := 0 to High(h.counts) do h.counts[i] := 0;
  h.sum := 0;
  h.count := 0;
end;

procedure InitMetrics;
var
  i: Integer;
begin
  { M is a global: zeroed at start; only the histograms need their buckets }
  for i := 0 to ERROR_CODE_COUNT - 1 do
  begin
    M.errors[i] := 0;
    M.errorsSeen[i] := False;
  end;
  { the buckets of servers/common/metrics.ts }
  HistInit(M.batchSize, [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000]);
  HistInit(M.commitDuration, [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5]);
  HistInit(M.queueWait, [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]);
  HistInit(M.txAttempts, [1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100]);
end;

procedure HistObserve(var h: THistogram; v: Double);
var
  i: Integer;
begin
  i := 0;
  while (i <= High(h.bounds)) and (v > h.bounds[i]) do Inc(i);
  Inc(h.counts[i]);
  h.sum := h.sum + v;
  Inc(h.count);
end;

procedure CountError(code: Integer);
begin
  Inc(M.errors[code]);
  M.errorsSeen[code] := True;
end;

procedure Head(var s: RawByteString; const name, kind, help: RawByteString);
begin
  s := s + '# HELP ' + name + ' ' + help + #10 + '# TYPE ' + name + ' ' + kind + #10;
end;

procedure Counter(var s: RawByteString; const name, help: RawByteString; v: Int64);
begin
  Head(s, name, 'counter', help);
  s := s + name + ' ' + IntToStr(v) + #10;
end;

procedure Gauge(var s: RawByteString; const name, help: RawByteString; const v: RawByteString);
begin
  Head(s, name, 'gauge', help);
  s := s + name + ' ' + v + #10;
end;

procedure Hist(var s: RawByteString; const name, help: RawByteString; const h: THistogram);
var
  i: Integer;
  cum: Int64;
begin
  Head(s, name, 'histogram', help);
  cum := 0;
  for i := 0 to High(h.bounds) do
  begin
    Inc(cum, h.counts[i]);
    s := s + name + '_bucket{le="' + JsNumber(h.bounds[i]) + '"} ' + IntToStr(cum) + #10;
  end;
  Inc(cum, h.counts[High(h.counts)]);
  s := s + name + '_bucket{le="+Inf"} ' + IntToStr(cum) + #10;
  s := s + name + '_sum ' + JsNumber(h.sum) + #10;
  s := s + name + '_count ' + IntToStr(h.count) + #10;
end;

function ReadSmallFile(const path: RawByteString; out text: RawByteString): Boolean;
var
  fd: cint;
  buf: array[0..4095] of AnsiChar;
  n: TSsize;
begin
  text := '';
  fd := fpOpen(path, O_RDONLY);
  if fd < 0 then Exit(False);
  n := fpRead(fd, buf, SizeOf(buf));
  fpClose(fd);
  if n <= 0 then Exit(False);
  SetString(text, PAnsiChar(@buf[0]), n);
  Result := True;
end;

function ResidentBytes: Int64;
var
  t: RawByteString;
  parts: TStringArray;
  pages: Int64;
begin
  if ReadSmallFile('/proc/self/statm', t) then
  begin
    parts := string(Trim(t)).Split([' ']);
    if (Length(parts) >= 2) and TryStrToInt64(parts[1], pages) then lastRss := pages * 4096;
  end;
  Result := lastRss;
end;

function CpuSeconds: Double;
var
  t: RawByteString;
  parts: TStringArray;
  p: SizeInt;
  ut, st: Int64;
begin
  if ReadSmallFile('/proc/self/stat', t) then
  begin
    p := LastDelimiter(')', t);
    if p > 0 then
    begin
      parts := string(Trim(Copy(t, p + 2, MaxInt))).Split([' ']);
      { after "pid (comm) ": state is [0], utime [11], stime [12], in clock ticks (USER_HZ = 100) }
      if (Length(parts) > 12) and TryStrToInt64(parts[11], ut) and TryStrToInt64(parts[12], st) then
        lastCpu := (ut + st) / 100;
    end;
  end;
  Result := lastCpu;
end;

function RenderMetrics(const g: TGauges): RawByteString;
var
  s: RawByteString;
  i: Integer;
begin
  s := '';
  Gauge(s, 'wami_connections', 'Open WebSocket connections.', IntToStr(g.connections));
  Gauge(s, 'wami_queue_depth', 'Updates accepted but not yet in a transaction: waiting in the queue or held for a seq lease.',
    IntToStr(g.queueDepth));
  Gauge(s, 'wami_wal_bytes', 'Size of the SQLite -wal file in bytes.', IntToStr(g.walBytes));
  Counter(s, 'wami_updates_received_total', 'Valid update frames received from clients.', M.updatesReceived);
  Counter(s, 'wami_updates_persisted_total', 'Updates committed to SQLite (one cards UPDATE + one card_events INSERT each).',
    M.updatesPersisted);
  Counter(s, 'wami_broadcast_frames_total', 'Broadcast frames sent to sockets (one per receiving socket).', M.broadcastFrames);
  Head(s, 'wami_errors_total', 'counter', 'Error frames sent, by code.');
  for i := 0 to ERROR_CODE_COUNT - 1 do
    if M.errorsSeen[i] then s := s + 'wami_errors_total{code="' + ERROR_CODES[i] + '"} ' + IntToStr(M.errors[i]) + #10;
  Counter(s, 'wami_slow_consumer_closes_total', 'Sockets closed (4008) because their unsent buffer passed --max-buffered-bytes.',
    M.slowConsumerCloses);
  Hist(s, 'wami_batch_size', 'Updates per committed transaction.', M.batchSize);
  Hist(s, 'wami_commit_duration_seconds', 'Duration of a committed transaction, BEGIN to COMMIT, in seconds.', M.commitDuration);
  Hist(s, 'wami_queue_wait_seconds', 'Per update: from receipt to the start of the transaction that committed it, in seconds.',
    M.queueWait);
  Counter(s, 'wami_sqlite_busy_total', 'SQLITE_BUSY errors met (each failed attempt).', M.sqliteBusy);
  Counter(s, 'wami_tx_retries_total', 'Transaction attempts beyond the first (retries).', M.txRetries);
  Counter(s, 'wami_busy_exhausted_total',
    'Updates answered BUSY_EXHAUSTED. Always 0 here: this design retries and splits a failing batch, then answers WRITE_FAILED.',
    M.busyExhausted);
  Hist(s, 'wami_tx_attempts', 'Transaction attempts per finished update (committed or given up).', M.txAttempts);
  Counter(s, 'wami_broadcast_unpersisted_total',
    'Updates already broadcast (before commit) whose write finally failed: phantoms by design.', M.broadcastUnpersisted);
  Counter(s, 'wami_batch_splits_total', 'Failing batches split in two to isolate bad rows.', M.batchSplits);
  Counter(s, 'wami_seq_lease_holds_total',
    'Updates held (not broadcast, not queued) because their board had used up its committed seq lease.', M.leaseHolds);
  Gauge(s, 'wami_seq_lease_held', 'Updates held now, waiting for a seq lease to commit.', IntToStr(g.held));
  Counter(s, 'wami_seq_lease_only_commits_total',
    'Transactions that committed seq leases alone (no update rows), for boards whose updates were held.', M.leaseCommits);
  Gauge(s, 'process_resident_memory_bytes', 'Resident memory size in bytes.', IntToStr(ResidentBytes));
  Head(s, 'process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.');
  s := s + 'process_cpu_seconds_total ' + JsNumber(CpuSeconds) + #10;
  Result := s;
end;

end.
