{ The writer's commit policy, pure (a port of commitWithSplit in servers/batched/batching.ts):
  try the whole range 1 + retries times; if it still fails and the error is splittable, commit each
  half on its own, recursively. One bad row among n costs about 2*log2(n)*(1+retries) extra
  transactions and loses no other row. SQLITE_BUSY / SQLITE_LOCKED is not about any row: retried,
  never split. Each row's `attempts` counts the transactions it took part in. }
unit wamisplit;

{$mode objfpc}{$H+}

interface

type
  TTryOutcome = record
    ok: Boolean;
    startMs, endMs: Double;
    errCode: Integer;       { SQLite extended result code, when not ok }
    errText: RawByteString;
  end;

  { One transaction over items lo..hi-1: all committed or none. }
  TTryCommit = function(lo, hi: Integer): TTryOutcome of object;

  TRowOutcome = record
    ok: Boolean;
    attempts: Integer;
    startMs, endMs: Double;
    errCode: Integer;
    errText: RawByteString;
  end;

  TSplitTx = record
    size: Integer;
    ok: Boolean;
    durationMs: Double;
    errCode: Integer;
  end;

  TSplitResult = record
    rows: array of TRowOutcome;
    tx: array of TSplitTx;
    splits: Integer;
    retries: Integer;
  end;

function IsBusyCode(code: Integer): Boolean;
function CommitWithSplit(count, retries: Integer; tryCommit: TTryCommit): TSplitResult;

implementation

function IsBusyCode(code: Integer): Boolean;
begin
  { SQLITE_BUSY = 5, SQLITE_LOCKED = 6, and their extended codes }
  Result := ((code and $FF) = 5) or ((code and $FF) = 6);
end;

type
  TSplitter = class
    res: TSplitResult;
    retries: Integer;
    tryCommit: TTryCommit;
    ntx: Integer;
    procedure AddTx(size: Integer; ok: Boolean; durationMs: Double; errCode: Integer);
    procedure Run(lo, hi: Integer);
  end;

procedure TSplitter.AddTx(size: Integer; ok: Boolean; durationMs: Double; errCode: Integer);
begin
  if ntx >= Length(res.tx) then SetLength(res.tx, ntx * 2 + 4);
  res.tx[ntx].size := size;
  res.tx[ntx].ok := ok;
  res.tx[ntx].durationMs := durationMs;
  res.tx[ntx].errCode := errCode;
  Inc(ntx);
end;

procedure TSplitter.Run(lo, hi: Integer);
var
  t, i, mid: Integer;
  r: TTryOutcome;
begin
  r.ok := False;
  r.errCode := 0;
  r.errText := '';
  for t := 0 to retries do
  begin
    if t > 0 then Inc(res.retries);
    for i := lo to hi - 1 do Inc(res.rows[i].attempts);
    r := tryCommit(lo, hi);
    if r.ok then
    begin
      AddTx(hi - lo, True, r.endMs - r.startMs, 0);
      for i := lo to hi - 1 do
      begin
        res.rows[i].ok := True;
        res.rows[i].startMs := r.startMs;
        res.rows[i].endMs := r.endMs;
      end;
      Exit;
    end;
    AddTx(hi - lo, False, 0, r.errCode);
  end;
  if (hi - lo > 1) and not IsBusyCode(r.errCode) then
  begin
    Inc(res.splits);
    mid := lo + (hi - lo + 1) div 2;
    Run(lo, mid);
    Run(mid, hi);
    Exit;
  end;
  for i := lo to hi - 1 do
  begin
    res.rows[i].ok := False;
    res.rows[i].errCode := r.errCode;
    res.rows[i].errText := r.errText;
  end;
end;

function CommitWithSplit(count, retries: Integer; tryCommit: TTryCommit): TSplitResult;
var
  s: TSplitter;
  i: Integer;
begin
  s := TSplitter.Create;
  try
    s.retries := retries;
    s.tryCommit := tryCommit;
    s.ntx := 0;
    SetLength(s.res.rows, count);
    for i := 0 to count - 1 do
    begin
      s.res.rows[i].ok := False;
      s.res.rows[i].attempts := 0;
      s.res.rows[i].startMs := 0;
      s.res.rows[i].endMs := 0;
      s.res.rows[i].errCode := 0;
      s.res.rows[i].errText := '';
    end;
    s.res.splits := 0;
    s.res.retries := 0;
    if count > 0 then s.Run(0, count);
    SetLength(s.res.tx, s.ntx);
    Result := s.res;
  finally
    s.Free;
  end;
end;

end.
